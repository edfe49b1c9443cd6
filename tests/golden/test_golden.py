"""Pinned digests of example builds: any change of output bytes shows up here.

Regenerate after an intended change with ``BALE_REGEN_GOLDEN=1 scripts/test.sh tests/golden``
and explain the change of digest in the commit message.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.helpers import check_layout

HERE = Path(__file__).parent
EXPECTED = HERE / "digests.json"
CASES = sorted(p.name for p in (HERE / "cases").iterdir())


@pytest.mark.parametrize("case", CASES)
def test_golden_digest(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / case
    shutil.copytree(HERE / "cases" / case, ctx)
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"oci:{tmp_path / 'o'}"]) == 0
    digest = capsys.readouterr().out.strip()
    check_layout(tmp_path / "o")
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    if os.environ.get("BALE_REGEN_GOLDEN") == "1":
        expected[case] = digest
        EXPECTED.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    assert expected.get(case) == digest, f"{case}: digest changed; see this file's docstring"


def test_every_case_is_pinned() -> None:
    assert sorted(json.loads(EXPECTED.read_text())) == CASES
