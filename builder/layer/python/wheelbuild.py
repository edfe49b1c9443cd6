"""Building a pure ``py3-none-any`` wheel from an sdist or a project directory with pip.

``pip wheel --no-deps`` runs in a temp directory (the project is copied
there first, so the build context is never written to) with pip's build
isolation, so the build backend comes from the same indexes pip uses. A wheel
with any other tag is refused: bale installs for other machines and never
compiles for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

from builder.errors import PackageError

PURE = {"py3-none-any", "py2.py3-none-any"}
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", ".tox"
)


def pure_wheel(source: Path, out: Path, what: str, platform: str, index_url: str = "") -> Path:
    """Build ``source`` (sdist file or project directory) into a pure wheel in ``out``.

    ``index_url`` (credentials included) is where pip finds the build backend.
    """
    env = {**os.environ, "PIP_INDEX_URL": index_url} if index_url else None
    with tempfile.TemporaryDirectory(prefix="bale-wheel-") as work:
        src = source
        if source.is_dir():
            src = Path(work) / "src"
            shutil.copytree(source, src, ignore=_SKIP, symlinks=True)
        wheels = Path(work) / "wheels"
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(wheels),
            str(src),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        built = sorted(wheels.glob("*.whl")) if wheels.exists() else []
        if result.returncode != 0 or len(built) != 1:
            lines = (result.stderr + result.stdout).strip().splitlines()
            tail = [line.strip() for line in lines if "ERROR" in line or "rror:" in line][-2:]
            tail = tail or [line.strip() for line in lines[-1:]]
            raise PackageError(
                f"{what}: no wheel for {platform}, and building one from source failed: "
                f"{' / '.join(tail) or 'pip wheel made no wheel'}; lock a version with a wheel"
            )
        wheel = built[0]
        tags = {str(t) for t in parse_wheel_filename(wheel.name)[3]}
        if not tags & PURE:
            raise PackageError(
                f"{what}: no wheel for {platform}, and its source builds {wheel.name}, which is "
                "not pure Python (py3-none-any); bale does not compile for other machines: "
                "lock a version that ships a wheel for this platform"
            )
        out.mkdir(parents=True, exist_ok=True)
        final = out / wheel.name
        shutil.copyfile(wheel, out / f".{wheel.name}.tmp")
        os.replace(out / f".{wheel.name}.tmp", final)
        return final
