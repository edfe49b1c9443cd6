"""Lock reading (requirements.txt, pylock.toml), target tags and markers, the python key."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.tags import Tag

from builder.errors import BaleError, PackageError
from builder.layer.entries import Entry, InlineContent, Kind
from builder.layer.filebody import DPKG_STATUS
from builder.layer.lower import LowerFS, entry_members
from builder.layer.python.choose import choose
from builder.layer.python.fetch import IndexFile
from builder.layer.python.indexes import Index, indexes, shown
from builder.layer.python.locked import Locked, LockedFile, read_pylock, read_requirements
from builder.layer.python.target import find_target
from builder.model import Platform
from builder.spec.load import load
from builder.spec.values import PythonSpec

H1, H2 = "a" * 64, "b" * 64
AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


def _req(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return path


def test_requirements_with_continuations_comments_markers_and_options(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "--index-url https://example.test/simple\n"
        f"Click==8.1.7 \\\n    --hash=sha256:{H1} \\\n    --hash=sha256:{H2}  # via app\n"
        f'colorama==0.4.6 ; sys_platform == "win32" --hash=sha256:{H1}\n'
    )
    lock = read_requirements(_req(tmp_path, text), "requirements.txt")
    assert lock.index_url == "https://example.test/simple"
    click, colorama = lock.dists
    assert (click.name, click.version, [f.sha256 for f in click.files]) == (
        "click",
        "8.1.7",
        [H1, H2],
    )
    assert click.where == "requirements.txt:3"
    assert colorama.marker is not None
    assert not colorama.marker.evaluate({"sys_platform": "linux"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("click>=8\n", "is not pinned to one version"),
        ("click==8.*  --hash=sha256:" + H1 + "\n", "is not pinned to one version"),
        ("click==8.1.7\n", "has no --hash=sha256"),
        ("click==8.1.7 --hash=md5:abc\n", "is not sha256:<64 hex digits>"),
        ("-e ./src\n", "'-e' is not supported in a lock"),
        (f"click==1 --hash=sha256:{H1}\nclick==2 --hash=sha256:{H2}\n", "locked twice"),
        ("git+https://example.test/x.git\n", "is not a requirement"),
    ],
)
def test_requirements_that_are_not_a_lock(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PackageError, match=r"requirements\.txt:[12]") as caught:
        read_requirements(_req(tmp_path, text), "requirements.txt")
    assert message in str(caught.value)


def test_pylock_packages_markers_and_environments(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(
        'lock-version = "1.0"\nenvironments = ["sys_platform == \'linux\'"]\n'
        'requires-python = ">=3.10"\n'
        '[[packages]]\nname = "MarkupSafe"\nversion = "2.1.5"\n'
        "marker = \"python_version >= '3.8'\"\n"
        f'wheels = [{{ url = "https://files.test/m/MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl", hashes = {{ sha256 = "{H1}" }} }}]\n'
        f'sdist = {{ url = "https://files.test/m/markupsafe-2.1.5.tar.gz", hashes = {{ sha256 = "{H2}" }} }}\n'
    )
    lock = read_pylock(path, "pylock.toml")
    (dist,) = lock.dists
    assert dist.name == "markupsafe" and dist.version == "2.1.5"
    assert [f.filename for f in dist.files] == [
        "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
        "markupsafe-2.1.5.tar.gz",
    ]
    assert lock.requires_python == ">=3.10" and len(lock.environments) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('lock-version = "2.0"\n', "is not 1.x"),
        ('lock-version = "1.0"\n', "no [[packages]]"),
        ('lock-version = "1.0"\n[[packages]]\nname = "x"\nversion = "1"\n', "no wheels or sdist"),
        (
            'lock-version = "1.0"\n[[packages]]\nname = "x"\nversion = "1"\n'
            'wheels = [{ url = "https://f.test/x-1-py3-none-any.whl", hashes = { md5 = "0" } }]\n',
            "no sha256",
        ),
    ],
)
def test_pylock_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text(text)
    with pytest.raises(PackageError, match=r"pylock\.toml") as caught:
        read_pylock(path, "pylock.toml")
    assert message in str(caught.value)


def _lower(status: str, *links: tuple[str, str]) -> LowerFS:
    lower = LowerFS()
    entries = [Entry(DPKG_STATUS, Kind.FILE, 0o644, content=InlineContent(status.encode()))]
    entries += [Entry(p, Kind.SYMLINK, 0o777, linkname=t) for p, t in links]
    entries += [Entry("usr/bin/python3.12", Kind.FILE, 0o755, content=InlineContent(b""))]
    entries += [Entry("usr/local/lib/python3.12/site-packages", Kind.DIR, 0o755)]
    lower.apply(entry_members(entries))
    return lower


def test_target_of_a_python_image_and_its_tags() -> None:
    status = "Package: libc6\nVersion: 2.31-13+deb11u5\n\nPackage: zlib1g\nVersion: 1:1.2\n"
    lower = _lower(status, ("usr/local/bin/python3", "/usr/bin/python3.12"))
    target = find_target(PythonSpec("lock", "pylock.toml"), lower, ARM64, "here")
    assert (target.python, target.libc, target.libc_version) == ((3, 12), "glibc", (2, 31))
    assert target.interpreter == "/usr/local/bin/python3.12"
    assert target.site_packages == "/usr/local/lib/python3.12/site-packages"
    assert target.scripts == "/usr/local/bin"
    tags = target.tags()
    assert tags[0] == Tag("cp312", "cp312", "manylinux_2_31_aarch64")
    assert Tag("cp312", "abi3", "manylinux2014_aarch64") in tags
    assert Tag("py3", "none", "any") in tags
    assert not [t for t in tags if "x86_64" in t.platform or "manylinux_2_32" in t.platform]
    assert target.environment()["platform_machine"] == "aarch64"


def test_wheel_choice_prefers_the_best_tag_and_names_what_is_missing() -> None:
    lower = _lower("Package: libc6\nVersion: 2.36-9\n", ("usr/bin/python3", "python3.12"))
    target = find_target(PythonSpec("lock", "x", venv="/app/.venv"), lower, AMD64, "here")
    assert target.shebang == "/app/.venv/bin/python"
    assert target.site_packages == "/app/.venv/lib/python3.12/site-packages"
    index = Index("https://i.test/simple")
    files = [
        IndexFile(name, f"https://i.test/{name}", H1, index)
        for name in (
            "m-1-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "m-1-cp312-cp312-manylinux_2_28_x86_64.whl",
            "m-1-cp312-cp312-manylinux_2_39_x86_64.whl",
            "m-1-cp312-cp312-musllinux_1_2_x86_64.whl",
        )
    ]
    dist = Locked("m", "1", (LockedFile(H1),), where="lock:1")
    assert choose(dist, files, target).file.filename == "m-1-cp312-cp312-manylinux_2_28_x86_64.whl"
    arm = find_target(PythonSpec("lock", "x"), lower, ARM64, "here")
    with pytest.raises(PackageError, match=r"lock:1: m==1 has no wheel for linux/arm64 .*aarch64"):
        choose(dist, files, arm)


def test_no_python_and_unknown_libc() -> None:
    with pytest.raises(PackageError, match="the base image has no Python"):
        find_target(PythonSpec("lock", "x"), LowerFS(), AMD64, "here")
    lower = _lower("Package: other\nVersion: 1.0\n", ("usr/bin/python3", "python3.12"))
    with pytest.raises(PackageError, match=r"set python\.libc"):
        find_target(PythonSpec("lock", "x"), lower, AMD64, "here")
    explicit = PythonSpec("lock", "x", interpreter="/opt/py/bin/python3.13", libc="musl 1.2")
    target = find_target(explicit, LowerFS(), AMD64, "here")
    assert target.platform_tags()[0] == "musllinux_1_2_x86_64"


def test_shown_urls_carry_no_credentials() -> None:
    assert shown("https://u:p4ss@i.test/simple/x/?token=abc") == "https://i.test/simple/x/"
    index = Index("https://i.test/simple", "u", "p4ss")
    assert index.auth_for("https://i.test/files/x.whl") is not None
    assert index.auth_for("https://elsewhere.test/x.whl") is None


@pytest.mark.parametrize(
    ("python", "message"),
    [
        ("{ }", "give exactly one of requirements"),
        ('{ requirements = "r.txt", lock = "pylock.toml" }', "found requirements, lock"),
        ('{ requirements = "../r.txt" }', "must be a path inside the build context"),
        ('{ project = ".", venv = "app" }', "must be an absolute image path"),
        ('{ project = ".", interpreter = "/usr/bin/python3" }', "does not name its version"),
        ('{ project = ".", libc = "uclibc" }', "is not a C library"),
        ('{ project = ".", index_url = "ftp://x" }', "not an http(s) URL"),
        ('{ project = ".", complie = true }', "did you mean 'compile'"),
    ],
)
def test_python_key_errors(tmp_path: Path, python: str, message: str) -> None:
    (tmp_path / "image.toml").write_text(f"[[layers]]\npython = {python}\n")
    with pytest.raises(BaleError) as caught:
        load(tmp_path / "image.toml")
    assert message in str(caught.value) and "layers[0].python" in str(caught.value)


def test_python_key_reads_every_option(tmp_path: Path) -> None:
    (tmp_path / "image.toml").write_text(
        '[[layers]]\npython = { requirements = "./deps/requirements.txt", venv = "/app/.venv/",'
        ' compile = true, index_url = "https://pypi.example/simple", libc = "glibc 2.36",'
        ' interpreter = "/usr/bin/python3.11" }\n'
    )
    (layer,) = load(tmp_path / "image.toml").layers
    assert layer.python == PythonSpec(
        "requirements",
        "deps/requirements.txt",
        venv="/app/.venv",
        interpreter="/usr/bin/python3.11",
        libc="glibc 2.36",
        index_url="https://pypi.example/simple",
        compile=True,
        where="layers[0].python",
    )


def test_indexes_follow_pip_order_and_netrc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://conf.test/simple\n"
        "extra-index-url = https://extra.test/simple https://more.test/simple\n"
    )
    netrc = tmp_path / "netrc"
    netrc.write_text("machine conf.test login ci password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    found = indexes("", "", ())
    assert [i.url for i in found] == [
        "https://conf.test/simple",
        "https://extra.test/simple",
        "https://more.test/simple",
    ]
    assert (found[0].username, found[0].password) == ("ci", "from-netrc")
    assert found[0].secret_url() == "https://ci:from-netrc@conf.test/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://u:p%40ss@env.test/simple/")
    (main, *_) = indexes("", "", ())
    assert (main.url, main.username, main.password) == ("https://env.test/simple", "u", "p@ss")
    assert indexes("", "https://lock.test/simple", ())[0].url == "https://lock.test/simple"
    assert [
        i.url for i in indexes("https://layer.test/simple", "https://lock.test/simple", ())
    ] == ["https://layer.test/simple"]
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_INDEX_URL")
    assert [i.url for i in indexes("", "", ())] == ["https://pypi.org/simple"]


def test_index_pages_in_html_and_json() -> None:
    import httpx

    from builder.layer.python.fetch import _parse

    index = Index("https://i.test/simple")
    request = httpx.Request("GET", "https://i.test/simple/click/")
    html = httpx.Response(
        200,
        headers={"content-type": "text/html"},
        text=f'<a href="../../f/click-8.1.7-py3-none-any.whl#sha256={H1}">click-8.1.7-py3-none-any.whl</a>',
        request=request,
    )
    (found,) = _parse(html, index)
    assert (found.url, found.sha256) == ("https://i.test/f/click-8.1.7-py3-none-any.whl", H1)
    page = {
        "files": [
            {"filename": "click-8.1.7.tar.gz", "url": "/f/c.tar.gz", "hashes": {"sha256": H2}}
        ]
    }
    json_page = httpx.Response(
        200,
        headers={"content-type": "application/vnd.pypi.simple.v1+json"},
        json=page,
        request=request,
    )
    (found,) = _parse(json_page, index)
    assert (found.filename, found.url, found.sha256) == (
        "click-8.1.7.tar.gz",
        "https://i.test/f/c.tar.gz",
        H2,
    )
