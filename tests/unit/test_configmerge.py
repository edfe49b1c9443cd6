"""Base config + [config] → what `docker build` produces for the same FROM and overrides."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.image.assemble import merge_config
from builder.spec.values import DEFAULT_PATH, ConfigSpec

BASE: dict[str, Any] = {
    "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "A=base"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "WorkingDir": "/srv",
    "User": "nginx",
    "ExposedPorts": {"80/tcp": {}},
    "Volumes": {"/var/cache": {}},
    "Labels": {"maintainer": "base", "keep": "1"},
    "StopSignal": "SIGQUIT",
    "OnBuild": ["RUN echo"],
    "Healthcheck": {"Test": ["CMD", "true"]},
}

CASES: list[tuple[str, ConfigSpec, dict[str, Any]]] = [
    # FROM base (nothing else): everything inherited except ONBUILD triggers
    ("inherit", ConfigSpec(), {k: v for k, v in BASE.items() if k != "OnBuild"}),
    # ENV A=new B=2: merged by key, base order kept, new keys last
    (
        "env",
        ConfigSpec(env=(("A", "new"), ("B", "2"))),
        {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "A=new", "B=2"]},
    ),
    # ENTRYPOINT ["/app"]: base CMD is reset
    ("entrypoint", ConfigSpec(entrypoint=("/app",)), {"Entrypoint": ["/app"], "Cmd": None}),
    # ENTRYPOINT + CMD
    (
        "entrypoint+cmd",
        ConfigSpec(entrypoint=("/app",), cmd=("--x",)),
        {"Entrypoint": ["/app"], "Cmd": ["--x"]},
    ),
    # CMD only: base ENTRYPOINT kept
    (
        "cmd",
        ConfigSpec(cmd=("sh",)),
        {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["sh"]},
    ),
    # WORKDIR / USER / STOPSIGNAL replace
    (
        "scalars",
        ConfigSpec(workdir="/app", user="1000", stop_signal="SIGTERM"),
        {"WorkingDir": "/app", "User": "1000", "StopSignal": "SIGTERM"},
    ),
    # EXPOSE and VOLUME add to the base's
    (
        "ports+volumes",
        ConfigSpec(ports=("8080/tcp",), volumes=("/data",)),
        {
            "ExposedPorts": {"80/tcp": {}, "8080/tcp": {}},
            "Volumes": {"/var/cache": {}, "/data": {}},
        },
    ),
    # LABEL merged, image.toml wins
    (
        "labels",
        ConfigSpec(labels=(("maintainer", "me"), ("new", "x"))),
        {"Labels": {"maintainer": "me", "keep": "1", "new": "x"}},
    ),
]


@pytest.mark.parametrize(("name", "spec", "changes"), CASES, ids=[c[0] for c in CASES])
def test_merge(name: str, spec: ConfigSpec, changes: dict[str, Any]) -> None:
    expected = {k: v for k, v in BASE.items() if k != "OnBuild"}
    for key, value in changes.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    assert merge_config(BASE, spec) == expected


def test_default_path_added_when_base_has_none() -> None:
    merged = merge_config({"Env": ["A=1"]}, ConfigSpec())
    assert merged["Env"] == ["A=1", f"PATH={DEFAULT_PATH}"]


def test_empty_base() -> None:
    merged = merge_config(None, ConfigSpec(cmd=("x",)))
    assert merged == {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["x"]}


def test_an_empty_entrypoint_means_the_same_on_scratch_and_on_a_base() -> None:
    """``entrypoint = []`` clears it; scratch and base builds used to disagree ([] vs absent)."""
    from builder.image.assemble import assemble
    from builder.model import Platform

    spec = ConfigSpec(entrypoint=(), cmd=("/x",))
    image = assemble(Platform.parse("linux/amd64"), 0, spec, [], {})
    config = json.loads(image.config.data)["config"]
    assert "Entrypoint" not in config
    assert config == merge_config(None, spec)
