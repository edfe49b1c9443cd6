"""Python layers end to end: locked wheels for amd64 and arm64, judged by runc on a real
Debian base, importlib.metadata on the unpacked tree, raw ELF headers and wheel tags.

Wheels come from tests/pyindex.py's wheelhouse (downloaded once per machine)
through a local simple index on 127.0.0.1; the public index is not used here.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import parse_tag

from builder.cli.main import main
from tests.conftest import require_root
from tests.helpers import blob, check_layout, runc_run, umoci_unpack, write_toml
from tests.pyindex import SimpleIndex, sha256, wheelhouse

SITE = "usr/local/lib/python3.11/dist-packages"
LOCKED = {"click": "8.1.7", "markupsafe": "2.1.5", "pyflakes": "3.2.0"}
BOTH = ("linux/amd64", "linux/arm64")
SKELETON_STATUS = (
    "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n"
    "Package: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6\n"
)


@pytest.fixture(autouse=True)
def _no_pip_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine's pip.conf and netrc are not the tests' indexes."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pure sdist (flit_core) and one with C code (setuptools), made here."""
    out = tmp_path_factory.mktemp("sdists")
    pure = {
        "pyproject.toml": '[build-system]\nrequires = ["flit_core==3.9.0"]\n'
        'build-backend = "flit_core.buildapi"\n[project]\nname = "tinypure"\n'
        'version = "1.0"\ndescription = "pure"\n',
        "tinypure.py": '"""A pure module."""\nVALUE = 42\n',
        "PKG-INFO": "Metadata-Version: 2.1\nName: tinypure\nVersion: 1.0\n",
    }
    native = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools==69.5.1", "wheel==0.43.0"]\n'
        'build-backend = "setuptools.build_meta"\n',
        "setup.py": "from setuptools import Extension, setup\n"
        "setup(name='cext', version='1.0', ext_modules=[Extension('cext', ['cext.c'])])\n",
        "cext.c": "#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "
        '"cext"};\nPyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&m); }\n',
        "PKG-INFO": "Metadata-Version: 2.1\nName: cext\nVersion: 1.0\n",
    }
    for name, files in (("tinypure-1.0", pure), ("cext-1.0", native)):
        with tarfile.open(out / f"{name}.tar.gz", "w:gz") as tar:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{name}/{path}")
                info.size, info.mtime = len(data), 1_700_000_000
                tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="module")
def index(sdists: Path) -> Iterator[SimpleIndex]:
    with SimpleIndex(wheelhouse(), sdists).running() as running:
        yield running


@pytest.fixture(scope="module")
def debian_base(debian: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The debootstrapped Debian root imported as a one-layer amd64 base image."""
    ctx = tmp_path_factory.mktemp("debian-base")
    excludes = [f"--exclude=./{d}/*" for d in ("dev", "proc", "sys")] + ["--exclude=./.complete"]
    subprocess.run(
        ["tar", "-C", str(debian), *excludes, "-cf", str(ctx / "rootfs.tar"), "."], check=True
    )
    spec = write_toml(
        ctx,
        """
        [image]
        tags = ["debian"]
        platforms = ["linux/amd64"]
        [[layers]]
        name = "rootfs"
        tar = "rootfs.tar"
        compression = "none"
        """,
    )
    assert main(["build", "-f", str(spec), "-o", f"oci:{ctx / 'oci'}"]) == 0
    (ctx / "rootfs.tar").unlink()
    return f"oci:{ctx / 'oci'}:debian"


@pytest.fixture(scope="module")
def skeleton_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A two-platform base that only looks like Debian with Python 3.11 (no binaries)."""
    ctx = tmp_path_factory.mktemp("skeleton")
    status = json.dumps(SKELETON_STATUS)
    spec = write_toml(
        ctx,
        f"""
        [image]
        tags = ["skel"]
        platforms = ["linux/amd64", "linux/arm64"]
        [[layers]]
        name = "skeleton"
        symlinks = [{{ path = "/usr/bin/python3", target = "python3.11" }}]
        dirs = [{{ path = "/usr/lib/python3/dist-packages" }}]
        content = [
          {{ dst = "/usr/bin/python3.11", text = "not a real interpreter", mode = 0o755 }},
          {{ dst = "/var/lib/dpkg/status", text = {status} }},
        ]
        """,
    )
    assert main(["build", "-f", str(spec), "-o", f"oci:{ctx / 'oci'}"]) == 0
    return f"oci:{ctx / 'oci'}:skel"


def requirements(names: dict[str, str], *, only: str = "") -> str:
    """A hash-pinned requirements.txt over the wheelhouse (``only`` keeps matching files)."""
    lines = []
    for name, version in names.items():
        files = [
            p
            for p in sorted(wheelhouse().iterdir())
            if p.name.lower().startswith(f"{name}-{version}") and only in p.name
        ]
        hashes = " \\\n    ".join(f"--hash=sha256:{sha256(p)}" for p in files)
        lines.append(f"{name}=={version} \\\n    {hashes}")
    return "\n".join(lines) + "\n"


def app_project(ctx: Path, greeting: str = "hello") -> None:
    """A pure project with a console script, built by flit_core."""
    project = ctx / "app"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core==3.9.0"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "app"\nversion = "1.0"\ndescription = "demo"\n'
        '[project.scripts]\nhello = "app:main"\n'
    )
    (project / "app.py").write_text(f'"""Demo app."""\n\ndef main():\n    print("{greeting}")\n')


def build(spec: Path, out: Path, *extra: str) -> int:
    return main(["build", "-f", str(spec), "-o", f"oci:{out}", *extra])


def context(
    root: Path,
    files: Mapping[str, str],
    layers: str,
    *,
    base: str = "",
    platforms: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> Path:
    """A build context at ``root``: ``files`` (name → text) and an image.toml whose
    [image] table names ``base``, ``platforms`` and ``tags`` (each only if given)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    head = ["[image]"]
    head += [f'base = "{base}"'] if base else []
    head += [f"platforms = {json.dumps(list(platforms))}"] if platforms else []
    head += [f"tags = {json.dumps(list(tags))}"] if tags else []
    return write_toml(root, "\n".join(head) + "\n" + layers)


def python_layer(name: str = "", **python: str | bool) -> str:
    """A ``[[layers]]`` table whose ``python`` inline table holds ``python``'s keys."""
    keys = ", ".join(f"{key} = {json.dumps(value)}" for key, value in python.items())
    named = f'name = "{name}"\n' if name else ""
    return f"[[layers]]\n{named}python = {{ {keys} }}\n"


def manifests(layout: Path) -> dict[str, dict[str, Any]]:
    """platform architecture → manifest."""
    found = {}
    for manifest in check_layout(layout):
        config = json.loads(blob(layout, manifest["config"]["digest"]))
        found[config["architecture"]] = manifest
    return found


def run_in(bundle: Path, args: list[str], name: str) -> subprocess.CompletedProcess[str]:
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = args
    config_path.write_text(json.dumps(config))
    return runc_run(bundle, f"bale-py-{name}-{os.getpid()}")


def test_amd64_image_runs_on_debian_under_runc(
    tmp_path: Path, index: SimpleIndex, debian_base: str
) -> None:
    require_root()
    pure_sdist = f"tinypure==1.0 --hash=sha256:{sha256(index.files['tinypure-1.0.tar.gz'])}\n"
    files = {
        "requirements.txt": requirements(LOCKED) + pure_sdist,
        "venv.txt": requirements({"click": "8.1.7"}),
    }
    layers = (
        python_layer("deps", requirements="requirements.txt", index_url=index.url)
        + python_layer("venv", requirements="venv.txt", index_url=index.url, venv="/app/.venv")
        + python_layer("app", project="app", index_url=index.url)
    )
    spec = context(tmp_path / "ctx", files, layers, base=debian_base, tags=["py"])
    app_project(tmp_path / "ctx")
    assert build(spec, tmp_path / "oci") == 0
    rootfs = umoci_unpack(tmp_path / "oci", "py", tmp_path / "bundle")
    bundle = tmp_path / "bundle"
    probe = (
        "import click, markupsafe, tinypure, markupsafe._speedups as s; "
        "print(click.__version__, markupsafe.__version__, tinypure.VALUE); "
        "print(markupsafe.escape.__module__, s.__file__)"
    )
    result = run_in(bundle, ["python3", "-c", probe], "probe")
    assert result.returncode == 0, result.stderr
    versions, compiled = result.stdout.splitlines()
    assert versions == "8.1.7 2.1.5 42"
    assert compiled.split()[1].endswith("_speedups.cpython-311-x86_64-linux-gnu.so")
    result = run_in(bundle, ["pyflakes", "--version"], "script")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3.2.0")
    result = run_in(bundle, ["hello"], "app")
    assert (result.returncode, result.stdout) == (0, "hello\n"), result.stderr
    venv_probe = "import sys, click; print(sys.prefix, click.__file__)"
    result = run_in(bundle, ["/app/.venv/bin/python", "-c", venv_probe], "venv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "/app/.venv",
        "/app/.venv/lib/python3.11/site-packages/click/__init__.py",
    ]
    cfg = (rootfs / "app/.venv/pyvenv.cfg").read_text()
    assert "home = /usr/bin\n" in cfg and "include-system-site-packages = false\n" in cfg
    assert (rootfs / "usr/local/bin/pyflakes").read_text().startswith("#!/usr/bin/python3.11\n")
    check_installed(rootfs / SITE, {**LOCKED, "tinypure": "1.0", "app": "1.0"})


def check_installed(site: Path, expected: dict[str, str]) -> None:
    """importlib.metadata finds each distribution at its version; every RECORD hash holds."""
    found = {
        d.metadata["Name"].lower(): d for d in importlib.metadata.distributions(path=[str(site)])
    }
    assert {name: found[name].version for name in expected} == expected
    for dist in found.values():
        assert dist.read_text("INSTALLER") == "bale\n"
        for file in dist.files or ():
            if file.hash is None:
                continue
            data = (site / file).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert (file.hash.mode, digest.decode()) == ("sha256", file.hash.value), file


def layer_members(layout: Path, descriptor: dict[str, Any]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob(layout, descriptor["digest"]))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_two_platforms_from_one_lock(
    tmp_path: Path, index: SimpleIndex, skeleton_base: str
) -> None:
    files = {
        "pure.txt": requirements({"click": "8.1.7", "pyflakes": "3.2.0"}),
        "native.txt": requirements({"markupsafe": "2.1.5"}),
    }
    layers = python_layer("pure", requirements="pure.txt", index_url=index.url) + python_layer(
        "native", requirements="native.txt", index_url=index.url
    )
    spec = context(tmp_path / "ctx", files, layers, base=skeleton_base, platforms=BOTH, tags=["py"])
    assert build(spec, tmp_path / "oci") == 0
    found = manifests(tmp_path / "oci")
    amd64, arm64 = found["amd64"]["layers"], found["arm64"]["layers"]
    assert amd64[1] == arm64[1]  # the pure layer is one blob
    assert amd64[2]["digest"] != arm64[2]["digest"]
    members = layer_members(tmp_path / "oci", arm64[2])
    shared = [name for name in members if name.endswith(".so")]
    assert shared
    for name in shared:
        data = members[name]
        assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 183, name
    assert sbom_packages(tmp_path / "oci") >= {("click", "8.1.7"), ("markupsafe", "2.1.5")}
    wheel = next(v for k, v in members.items() if k.endswith(".dist-info/WHEEL")).decode()
    tags = [
        t for line in wheel.splitlines() if line.startswith("Tag: ") for t in parse_tag(line[5:])
    ]
    assert tags
    for tag in tags:
        machine = (
            tag.platform.rsplit("_", 1)[-1]
            if "manylinux_" in tag.platform
            else tag.platform.split("_", 1)[1]
        )
        assert machine == "aarch64", tag
        if tag.platform.startswith("manylinux_"):
            major, minor = (int(p) for p in tag.platform.split("_")[1:3])
            assert (major, minor) <= (2, 36), tag


def sbom_packages(layout: Path) -> set[tuple[str, str]]:
    """(name, version) of every package in the SPDX documents the build wrote."""
    found = set()
    for path in (layout / "blobs" / "sha256").iterdir():
        try:
            document = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(document, dict) and "spdxVersion" in document:
            for package in document.get("packages", []):
                found.add((str(package.get("name", "")).lower(), package.get("versionInfo", "")))
    return found


def test_same_digests_from_copies_and_deps_layer_survives_app_change(
    tmp_path: Path, index: SimpleIndex, skeleton_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "one"
    compiled = sys.version_info[:2] == (3, 11)
    layers = python_layer(
        "deps", requirements="requirements.txt", index_url=index.url, compile=compiled
    ) + python_layer("app", project="app", index_url=index.url)
    files = {"requirements.txt": requirements(LOCKED)}
    context(first, files, layers, base=skeleton_base, platforms=BOTH, tags=["py"])
    app_project(first)
    second = tmp_path / "two"
    shutil.copytree(first, second)
    assert build(first / "image.toml", tmp_path / "a") == 0
    first_cache = os.environ["BALE_CACHE_DIR"]
    monkeypatch.setenv("BALE_CACHE_DIR", str(tmp_path / "another-machine"))
    assert build(second / "image.toml", tmp_path / "b") == 0
    monkeypatch.setenv("BALE_CACHE_DIR", first_cache)
    index_a = json.loads((tmp_path / "a/index.json").read_text())
    index_b = json.loads((tmp_path / "b/index.json").read_text())
    assert index_a["manifests"][0]["digest"] == index_b["manifests"][0]["digest"]
    app_project(second, greeting="changed")
    assert build(second / "image.toml", tmp_path / "c") == 0
    before, after = manifests(tmp_path / "a"), manifests(tmp_path / "c")
    for arch in ("amd64", "arm64"):
        assert before[arch]["layers"][1] == after[arch]["layers"][1]
        assert before[arch]["layers"][2] != after[arch]["layers"][2]
    if compiled:
        members = layer_members(tmp_path / "a", before["amd64"]["layers"][1])
        pycs = [v for k, v in members.items() if k.endswith(".cpython-311.pyc")]
        assert pycs and all(int.from_bytes(p[4:8], "little") == 0b01 for p in pycs)


def test_pylock_toml(tmp_path: Path, index: SimpleIndex, skeleton_base: str) -> None:
    files = {"pylock.toml": pylock(index, {"click": "8.1.7", "markupsafe": "2.1.5"})}
    layers = python_layer("deps", lock="pylock.toml")
    spec = context(tmp_path / "ctx", files, layers, base=skeleton_base, platforms=["linux/arm64"])
    assert build(spec, tmp_path / "oci") == 0
    (layers,) = [m["layers"] for m in manifests(tmp_path / "oci").values()]
    names = set(layer_members(tmp_path / "oci", layers[1]))
    assert f"{SITE}/click/__init__.py" in names
    assert any(n.startswith(f"{SITE}/markupsafe/_speedups") for n in names)


def pylock(index: SimpleIndex, names: dict[str, str], extra: str = "") -> str:
    """A PEP 751 lock naming every wheelhouse file of each distribution by URL and hash."""
    parts = [f'lock-version = "1.0"\ncreated-by = "tests"\n{extra}']
    for name, version in names.items():
        wheels = [
            f'{{ name = "{n}", url = "{index.file_url(n)}", hashes = {{ sha256 = "{sha256(p)}" }} }}'
            for n, p in sorted(index.files.items())
            if n.lower().startswith(f"{name}-{version}") and n.endswith(".whl")
        ]
        parts.append(
            f'[[packages]]\nname = "{name}"\nversion = "{version}"\nwheels = [\n  '
            + ",\n  ".join(wheels)
            + "\n]\n"
        )
    return "\n".join(parts)


BAD = {
    "wrong hash": (
        "requirements.txt",
        "click==8.1.7 --hash=sha256:" + "0" * 64 + "\n",
        "no file of click==8.1.7 on the index has a hash the lock allows",
    ),
    "unpinned": ("requirements.txt", "click>=8\n", "is not pinned to one version"),
    "unhashed": ("requirements.txt", "click==8.1.7\n", "has no --hash=sha256"),
    "missing arm64 wheel": (
        "requirements.txt",
        "ONLY_X86",
        "markupsafe==2.1.5 has no wheel for linux/arm64",
    ),
    "sdist with C code": (
        "requirements.txt",
        "CEXT",
        "cext==1.0",
    ),
    "marker excludes the target": (
        "pylock.toml",
        "DARWIN",
        "which exclude linux/amd64",
    ),
    "package needs a newer Python": (
        "pylock.toml",
        "PY312",
        "click==8.1.7 requires Python >=3.12, but linux/amd64 (CPython 3.11",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_error(
    case: str,
    tmp_path: Path,
    index: SimpleIndex,
    skeleton_base: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, text, message = BAD[case]
    if text == "ONLY_X86":
        text = requirements({"markupsafe": "2.1.5"}, only="x86_64")
    elif text == "CEXT":
        text = f"cext==1.0 --hash=sha256:{sha256(index.files['cext-1.0.tar.gz'])}\n"
    elif text == "PY312":
        text = pylock(index, {"click": "8.1.7"}).replace(
            'version = "8.1.7"\n', 'version = "8.1.7"\nrequires-python = ">=3.12"\n'
        )
    elif text == "DARWIN":
        text = pylock(index, {"click": "8.1.7"}, "environments = [\"sys_platform == 'darwin'\"]\n")
    key = "requirements" if name == "requirements.txt" else "lock"
    layers = python_layer(**{key: name, "index_url": index.url})
    spec = context(tmp_path / "ctx", {name: text}, layers, base=skeleton_base, platforms=BOTH)
    capsys.readouterr()
    assert build(spec, tmp_path / "oci") == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "oci").exists()


def test_base_without_python(
    tmp_path: Path, index: SimpleIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"requirements.txt": requirements({"click": "8.1.7"})}
    layers = python_layer(requirements="requirements.txt", index_url=index.url)
    spec = context(tmp_path / "ctx", files, layers, platforms=["linux/amd64"])
    assert build(spec, tmp_path / "oci") == 1
    assert "the base image has no Python" in capsys.readouterr().err
    assert not (tmp_path / "oci").exists()


def test_file_with_wrong_hash_is_never_cached(
    tmp_path: Path, index: SimpleIndex, skeleton_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"pylock.toml": pylock(index, {"pyflakes": "3.2.0"})}
    layers = python_layer(lock="pylock.toml")
    spec = context(tmp_path / "ctx", files, layers, base=skeleton_base, platforms=["linux/amd64"])
    index.tampered.add("pyflakes-3.2.0-py2.py3-none-any.whl")
    try:
        assert build(spec, tmp_path / "oci") == 1
    finally:
        index.tampered.clear()
    assert "the lock says" in capsys.readouterr().err
    cache = Path(os.environ["BALE_CACHE_DIR"]) / "blobs" / "sha256"
    assert not cache.exists() or not [p for p in cache.iterdir() if p.name.startswith(".python-")]
    expected = sha256(index.files["pyflakes-3.2.0-py2.py3-none-any.whl"])
    assert not (cache / expected).exists()
    assert build(spec, tmp_path / "oci") == 0
    assert (cache / expected).exists()


def test_index_credentials_from_netrc_never_leak(
    tmp_path: Path,
    skeleton_base: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "s3cret-pa55"
    with SimpleIndex(wheelhouse(), auth=("builder", secret)).running() as private:
        files = {"requirements.txt": requirements({"click": "8.1.7"})}
        layers = python_layer(requirements="requirements.txt")
        spec = context(
            tmp_path / "ctx", files, layers, base=skeleton_base, platforms=["linux/amd64"]
        )
        monkeypatch.setenv("PIP_INDEX_URL", private.url)
        assert build(spec, tmp_path / "denied") == 1
        err = capsys.readouterr().err
        assert "answered 401" in err and "netrc" in err
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login builder password {secret}\n")
        monkeypatch.setenv("NETRC", str(netrc))
        assert build(spec, tmp_path / "oci") == 0
        wrong = private.url.replace("http://", "http://builder:wrong-pw@")
        monkeypatch.setenv("PIP_INDEX_URL", wrong)
        monkeypatch.setenv("BALE_CACHE_DIR", str(tmp_path / "fresh-cache"))
        assert build(spec, tmp_path / "wrong") == 1
        err = capsys.readouterr().err
    assert "wrong-pw" not in err and secret not in err
    assert any("Basic " in r for r in private.requests)
    for path in (tmp_path / "oci").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()
    for path in Path(os.environ["BALE_CACHE_DIR"]).rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_warm_build_asks_no_index(tmp_path: Path, skeleton_base: str) -> None:
    files = {"requirements.txt": requirements({"click": "8.1.7", "markupsafe": "2.1.5"})}
    with SimpleIndex(wheelhouse()).running() as short_lived:
        layers = python_layer(requirements="requirements.txt", index_url=short_lived.url)
        spec = context(tmp_path / "ctx", files, layers, base=skeleton_base, platforms=BOTH)
        assert build(spec, tmp_path / "first") == 0
        asked = len(short_lived.requests)
    assert asked > 0
    assert build(spec, tmp_path / "second") == 0
    first = json.loads((tmp_path / "first/index.json").read_text())["manifests"]
    second = json.loads((tmp_path / "second/index.json").read_text())["manifests"]
    assert first == second
