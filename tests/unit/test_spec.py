from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.model import Platform
from builder.spec.load import load
from tests.helpers import write_toml

LAYER = '[[layers]]\ncontent = [{ dst = "/f", text = "x" }]\n'


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    return load(write_toml(tmp_path, text))


def test_full_example_parses(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        """
        [image]
        tags = ["1.0.0", "latest", "1.0.0"]
        platforms = ["linux/arm64/v8"]
        compression = "zstd"
        compression_level = 9
        created = 2024-01-01T00:00:00Z

        [config]
        entrypoint = ["/app/server"]
        cmd = ["--port=8080"]
        env = { APP_ENV = "prod" }
        workdir = "/app"
        user = "1000:1000"
        ports = ["8080", "53/udp"]
        volumes = ["/data"]
        labels = { "org.example.team" = "core" }
        stop_signal = "SIGTERM"

        [annotations]
        "org.opencontainers.image.source" = "https://example.com/app"

        [[layers]]
        name = "app"
        compression = "gzip"
        files = [{ src = "dist/", dst = "/app/", mode = 0o755, owner = "1000:1000", exclude = ["*.map"] }]
        dirs = [{ path = "/data", mode = 0o700 }]
        symlinks = [{ path = "/usr/bin/server", target = "/app/server" }]
        hardlinks = [{ path = "/app/hl", target = "/app/server" }]
        content = [{ dst = "/etc/app.conf", text = "port = 8080\\n", mode = "0600" }]
        """,
    )
    assert spec.tags == ("1.0.0", "latest")
    assert spec.platforms == (Platform("linux", "arm64"),)
    assert (spec.codec.name, spec.codec.level) == ("zstd", 9)
    assert spec.created == 1704067200
    assert spec.config.ports == ("8080/tcp", "53/udp")
    layer = spec.layers[0]
    assert (layer.codec.name, layer.codec.level) == ("gzip", 2)
    assert layer.files[0].dst == "/app/" and layer.files[0].exclude == ("*.map",)
    assert layer.dirs[0].mode == 0o700 and layer.content[0].mode == 0o600
    assert spec.context == tmp_path.resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[image\n", r"invalid TOML.*line 1"),
        ("[imgae]\n" + LAYER, r"unknown key 'imgae'; did you mean 'image'"),
        (
            "[image]\ntagz = []\n" + LAYER,
            r":2: image.tagz: unknown key 'tagz'; did you mean 'tags'",
        ),
        ('[image]\ntags = "latest"\n' + LAYER, r"image.tags: expected an array"),
        ('[image]\ntags = ["-bad"]\n' + LAYER, r"image.tags\[0\]: invalid tag '-bad'"),
        ('[image]\nplatforms = ["linux"]\n' + LAYER, r"invalid platform 'linux'"),
        ('[image]\nplatforms = ["all"]\n' + LAYER, r"image.platforms: \"all\" means every"),
        (
            '[image]\nbase = "oci:b"\nplatforms = ["all", "linux/amd64"]\n' + LAYER,
            r"image.platforms: \"all\" stands alone",
        ),
        (
            '[[layers]]\nplatforms = ["all"]\n',
            r"layers\[0\].platforms\[0\]: invalid platform 'all'",
        ),
        ('[image]\ncompression = "lz4"\n' + LAYER, r"unknown compression 'lz4'"),
        ("[image]\ncompression_level = 99\n" + LAYER, r"out of range for gzip"),
        ('[image]\ncreated = "yesterday"\n' + LAYER, r"image.created: expected an RFC 3339"),
        ('[image]\nbase = "Ubuntu"\n' + LAYER, r"unsupported base 'Ubuntu'.*lowercase"),
        ('[config]\nports = ["http"]\n' + LAYER, r"config.ports\[0\]: invalid port 'http'"),
        ('[config]\nports = ["70000"]\n' + LAYER, r"invalid port '70000'"),
        ('[config]\nworkdir = "app"\n' + LAYER, r"config.workdir: 'app' is not absolute"),
        ('[config]\nuser = "a b"\n' + LAYER, r"invalid user 'a b'"),
        ('[config]\nstop_signal = "TERM!"\n' + LAYER, r"invalid signal"),
        ("[config]\nenv = { A = 1 }\n" + LAYER, r"config.env.A: expected a string"),
        ("[config]\nentrypont = []\n" + LAYER, r"did you mean 'entrypoint'"),
        ("", r"a scratch image needs at least one \[\[layers\]\]"),
        ('[[layers]]\nfiles = [{ dst = "/a" }]\n', r"layers\[0\].files\[0\].src: missing 'src'"),
        ('[[layers]]\nfiles = [{ src = "../x", dst = "/a" }]\n', r"escapes the build context"),
        ('[[layers]]\nfiles = [{ src = "/etc", dst = "/a" }]\n', r"escapes the build context"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "a" }]\n', r"'a' is not absolute"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/a/../b" }]\n', r"may not contain '..'"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/.wh.a" }]\n', r"reserved for whiteouts"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/a", mode = 0o17777 }]\n', r"invalid mode"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/a", mode = "rwx" }]\n', r"invalid mode"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/a", owner = "1:2:3" }]\n', r"invalid owner"),
        ('[[layers]]\nfiles = [{ src = "x", dst = "/a", mod = 1 }]\n', r"did you mean 'mode'"),
        ('[[layers]]\nsymlinks = [{ path = "/a" }]\n', r"missing 'target'"),
        ('[[layers]]\ncontent = [{ dst = "/a" }]\n', r"missing 'text'"),
        ("[[layers]]\nname = 3\n", r"layers\[0\].name: expected a string, got an integer \(3\)"),
    ],
)
def test_bad_input_is_a_located_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        _load(tmp_path, text)
    assert str(tmp_path / "image.toml") in str(caught.value)


def test_error_names_the_line_of_the_key(tmp_path: Path) -> None:
    text = '[image]\ntags = []\n\n[[layers]]\nname = "a"\n\n[[layers]]\nname = "b"\nfiels = []\n'
    with pytest.raises(SpecError, match=r"image.toml:9: layers\[1\].fiels: unknown key"):
        _load(tmp_path, text)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file; pass the image file with -f"):
        load(tmp_path / "nope.toml")


def test_platforms_all_with_a_base(tmp_path: Path) -> None:
    spec = _load(tmp_path, '[image]\nbase = "oci:b"\nplatforms = ["All"]\n' + LAYER)
    assert spec.all_platforms and spec.platforms == ()


@pytest.mark.parametrize(
    ("key", "table"),
    [
        ("exclude", 'files = [{ src = "d", dst = "/d", exclude = ["[z-a]"] }]'),
        ("exclude", 'files = [{ src = "d", dst = "/d", exclude = [\'\\\'] }]'),
        ("delete", 'delete = ["/[z-a]"]'),
    ],
)
def test_a_bad_glob_is_a_located_error(tmp_path: Path, key: str, table: str) -> None:
    path = tmp_path / "image.toml"
    path.write_text(f"[[layers]]\n{table}\n")
    with pytest.raises(SpecError, match=rf"{key}\[0\]: invalid pattern"):
        load(path)
