"""Who ran the build: GitHub Actions or GitLab CI, read from an allow-list of variables.

Only the variables named here are read, and none of them is a secret
(tokens, passwords and arbitrary environment are never looked at).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOCAL_BUILDER = "https://bale.invalid/builders/local"

GITHUB_INTERNAL = (
    "GITHUB_EVENT_NAME",
    "GITHUB_REPOSITORY_ID",
    "GITHUB_REPOSITORY_OWNER_ID",
    "RUNNER_ENVIRONMENT",
    "GITHUB_WORKFLOW_REF",
)
GITLAB_INTERNAL = ("CI_PIPELINE_SOURCE", "CI_PROJECT_ID", "CI_JOB_ID", "CI_PIPELINE_ID")


@dataclass(frozen=True, slots=True)
class CiContext:
    """The builder id, the invocation id and the source revision of a CI run."""

    builder_id: str = LOCAL_BUILDER
    invocation_id: str = ""
    internal: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, Any] | None = None


def _pick(env: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: env[name] for name in names if env.get(name)}


def _github(env: Mapping[str, str]) -> CiContext:
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo = env.get("GITHUB_REPOSITORY", "")
    workflow = env.get("GITHUB_WORKFLOW_REF", "")
    builder = f"{server}/{workflow}" if workflow else f"{server}/actions/runner"
    run = env.get("GITHUB_RUN_ID", "")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
    invocation = f"{server}/{repo}/actions/runs/{run}/attempts/{attempt}" if repo and run else ""
    source = None
    if repo and env.get("GITHUB_SHA"):
        ref = env.get("GITHUB_REF", "")
        source = {
            "uri": f"git+{server}/{repo}" + (f"@{ref}" if ref else ""),
            "digest": {"gitCommit": env["GITHUB_SHA"]},
        }
    return CiContext(builder, invocation, _pick(env, GITHUB_INTERNAL), source)


def _gitlab(env: Mapping[str, str]) -> CiContext:
    server = env.get("CI_SERVER_URL", "https://gitlab.com")
    project = env.get("CI_PROJECT_PATH", "")
    runner = env.get("CI_RUNNER_ID", "")
    builder = f"{server}/{project}/-/runners/{runner}" if project and runner else server
    source = None
    if env.get("CI_PROJECT_URL") and env.get("CI_COMMIT_SHA"):
        ref = env.get("CI_COMMIT_REF_NAME", "")
        source = {
            "uri": f"git+{env['CI_PROJECT_URL']}" + (f"@{ref}" if ref else ""),
            "digest": {"gitCommit": env["CI_COMMIT_SHA"]},
        }
    return CiContext(builder, env.get("CI_JOB_URL", ""), _pick(env, GITLAB_INTERNAL), source)


def ci_context(env: Mapping[str, str]) -> CiContext:
    """The CI run described by ``env`` (GitHub Actions, GitLab CI), else a local build."""
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env)
    return CiContext()
