"""The base image's container config merged with [config], the way ``docker build`` does.

- ``Env`` merged by key: base order kept, image.toml values win, new keys appended;
  PATH gets the default when neither defines it.
- ``Entrypoint`` given → the base ``Cmd`` is dropped unless ``cmd`` is given too
  (Docker's ENTRYPOINT rule); ``cmd`` alone keeps the base entrypoint.
- ``WorkingDir``, ``User``, ``StopSignal`` replaced when given.
- ``ExposedPorts``, ``Volumes`` and ``Labels`` are unions (image.toml wins on a label).
- ``OnBuild`` is dropped (Docker runs and clears triggers; bale runs none);
  every other base key (``Healthcheck``, ``Shell``, ...) is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.spec.values import DEFAULT_PATH, ConfigSpec

_DROPPED = frozenset({"OnBuild"})


def _env(base: Any, spec: ConfigSpec) -> list[str]:
    env: dict[str, str] = {}
    for item in base or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    env.update(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in env.items()]


def _union(base: Any, extra: tuple[str, ...]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    merged.update((key, {}) for key in extra)
    return merged


def merge_config(base: Mapping[str, Any] | None, spec: ConfigSpec) -> dict[str, Any]:
    """The ``config`` object of an image built on ``base`` (a base config's ``config``)."""
    out = {k: v for k, v in (base or {}).items() if k not in _DROPPED and v is not None}
    out["Env"] = _env(out.get("Env"), spec)
    if spec.entrypoint is not None:
        out["Entrypoint"] = list(spec.entrypoint)
        out.pop("Cmd", None)
    if spec.cmd is not None:
        out["Cmd"] = list(spec.cmd)
    scalars = {"WorkingDir": spec.workdir, "User": spec.user, "StopSignal": spec.stop_signal}
    out.update((key, value) for key, value in scalars.items() if value)
    labels = dict(out.get("Labels") or {})
    labels.update(spec.labels)
    out["Labels"] = labels
    out["ExposedPorts"] = _union(out.get("ExposedPorts"), spec.ports)
    out["Volumes"] = _union(out.get("Volumes"), spec.volumes)
    return {k: v for k, v in out.items() if v not in ({}, [], "")}
