"""Push the standard-library image to a loopback registry: bale against skopeo copy.

Builds an image of this interpreter's stdlib directory with bale into an OCI
layout, then, each into a fresh repository of one Debian docker-registry:
``bale build -o docker://`` (build from the warm layer cache + push) and
``skopeo copy oci:... docker://...`` of the same layout. The push alone is
the difference between that build and the same build into a local layout. A second bale push
must send no blob bytes (checked in the registry log). Run from the repo root:
``python3 benchmarks/push.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.cli.main import main
from tests.integration.registry_fixtures import RunningRegistry, plain_registry


def timed(label: str, action: object) -> float:
    start = time.perf_counter()
    assert callable(action)
    action()
    elapsed = time.perf_counter() - start
    print(f"{label:<40} {elapsed:7.2f} s")
    return elapsed


def bench(reg: RunningRegistry, spec: Path, layout: Path) -> None:
    bale = ["build", "-q", "-f", str(spec), "-o", f"docker://{reg.host}/bench/bale:v1"]
    copy = ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1"]
    copy.append(f"docker://{reg.host}/bench/skopeo:v1")
    local = ["build", "-q", "-f", str(spec), "-o", f"oci:{spec.parent / 'again'}:v1"]
    built = timed("bale build (cached layer), no push", lambda: main(local))
    both = timed("bale build (cached layer) + push", lambda: main(bale))
    skopeo = timed("skopeo copy oci: docker://", lambda: subprocess.run(copy, check=True))
    print(f"{'bale push alone (difference)':<40} {both - built:7.2f} s")
    print(f"{'bale push / skopeo copy':<40} {(both - built) / skopeo:7.2f}")

    def sent() -> tuple[int, int]:
        log = reg.log()
        return log.count("PUT /v2/bench/bale/blobs/uploads"), log.count("PATCH /v2/bench/bale/")

    before = sent()
    timed("bale build (cached) + second push", lambda: main(bale))
    assert sent() == before, "blobs were re-sent"
    print("second push: no blob bytes sent (registry log)")


def run() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory(prefix="bale-bench-") as work:
        root = Path(work)
        ignore = shutil.ignore_patterns("site-packages", "__pycache__", "test")
        shutil.copytree(stdlib, root / "stdlib", ignore=ignore, ignore_dangling_symlinks=True)
        time.sleep(2.5)  # older than bale's racy window, so the layer is cached
        spec = root / "image.toml"
        spec.write_text('[[layers]]\nfiles = [{ src = "stdlib", dst = "/usr/lib/python" }]\n')
        layout = root / "layout"
        assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}:v1"]) == 0
        size = sum(p.stat().st_size for p in (layout / "blobs").rglob("*") if p.is_file())
        print(f"image: {stdlib} ({size / 1e6:.1f} MB compressed)")
        (root / "registry").mkdir()
        for reg in plain_registry(root / "registry"):
            bench(reg, spec, layout)


if __name__ == "__main__":
    run()
