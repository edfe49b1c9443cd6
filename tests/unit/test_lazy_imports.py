"""A build that touches no registry does not load the HTTP stack.

Importing httpx costs about 40 ms, a seventh of a no-change rebuild: it is
loaded only by the commands and outputs that talk to a registry
(docs/performance.md, "Imports").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import write_toml

PROBE = """
import sys
from builder.cli.main import main
code = main(sys.argv[1:])
print(code, sorted(m for m in ("httpx", "h11", "ssl") if m in sys.modules))
"""


def test_a_layout_build_does_not_import_httpx(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello")
    spec = write_toml(
        tmp_path,
        """
        [image]
        created = "2024-01-01T00:00:00Z"
        [[layers]]
        files = [{ src = "hello.txt", dst = "/hello.txt" }]
        """,
    )
    out = tmp_path / "out"
    argv = ["build", "-q", "--no-cache", "-f", str(spec), "-o", f"oci:{out}"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
    assert (out / "index.json").is_file()
