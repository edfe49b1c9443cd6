"""A registry whose answers are hostile JSON: nested deep, endless, compressed bombs, or
of the wrong types. Each ends with one error line and exit 1 (a cold build with one
warning where the layer cache is concerned), and the server never gets to send more
than a bounded part of an endless answer.

The server is a small socket server in this file; the same cases against the real
registry's answers are in test_registry_client.py and test_flaky_network.py.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from builder.cli.main import main
from builder.commands import attach
from builder.errors import RegistryError
from builder.image.documents import MAX_DOCUMENT
from builder.model import OCI_INDEX, OCI_MANIFEST, Digest
from builder.registry.client import RegistryClient, RegistryOptions
from builder.registry.credentials import ANONYMOUS
from builder.registry.failures import RetryPolicy
from builder.registry.layercache import CACHE_TYPE
from tests.helpers import write_toml

MiB = 1 << 20
DEEP = b"[" * 100_000 + b"]" * 100_000
ENDLESS = 1 << 30  # what the server would send of an endless answer, were it all read
# Kernel socket buffers on loopback hold a few MiB: whatever the server got out beyond
# them was read by bale. Far below the 1 GiB the server offers.
SENT_BOUND = MAX_DOCUMENT + 16 * MiB
CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()


def manifest(extra: dict[str, object] | None = None) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": str(Digest.of(CONFIG)),
            "size": len(CONFIG),
        },
        "layers": [],
        **(extra or {}),
    }
    return json.dumps(document).encode()


@dataclass
class Answer:
    """What the server answers to one path: a status, headers, and a body (or ENDLESS)."""

    status: int = 200
    body: bytes = b""
    kind: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    endless: bool = False


class Hostile(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, Answer]] = {}
    sent: ClassVar[list[int]] = []
    bearer = False

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.bearer and path.startswith("/v2/") and not self.headers.get("Authorization"):
            realm = f'Bearer realm="http://{self.headers["Host"]}/token",service="hostile"'
            return self._send(Answer(401, headers={"WWW-Authenticate": realm}))
        for pattern, answer in self.answers.items():
            if re.fullmatch(pattern, path):
                return self._send(answer)
        return self._send(Answer(200 if path == "/v2/" else 404, b"{}"))

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in {"Content-Type": answer.kind, **answer.headers}.items():
            self.send_header(name, value)
        if not answer.endless:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if not answer.endless:
            self.wfile.write(answer.body)
            return
        self.close_connection = True
        piece, sent = b'{"tags": ["' + b"x" * (MiB - 11), 0
        try:
            while sent < ENDLESS:
                self.wfile.write(piece)
                sent += len(piece)
                piece = b"x" * MiB
        except OSError:
            pass
        finally:
            self.sent.append(sent)

    do_GET = do_HEAD = do_POST = do_PUT = _answer


@pytest.fixture
def hostile() -> Iterator[tuple[str, type[Hostile]]]:
    handler = type("Handler", (Hostile,), {"answers": {}, "sent": [], "bearer": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def one_error(capsys: pytest.CaptureFixture[str], args: list[str], *words: str) -> str:
    """Run bale: exit 1 and exactly one line, a ``bale: error:`` holding ``words``."""
    code = main(["inspect", "--retries", "1", *args])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("bale: error:") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


MANIFEST_PATH = r"/v2/hostile/app/manifests/(v1|sha256:[0-9a-f]{64})"
GZIP_BOMB = gzip.compress(bytes(64 * MiB), 9)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(body=DEEP, kind=OCI_MANIFEST), ["nested more than 64 levels"]),
        (Answer(body=b"[1, 2]", kind=OCI_MANIFEST), ["not an object"]),
        (Answer(body=b'{"a": 1e999}', kind=OCI_MANIFEST), ["out of range"]),
        (Answer(body=b'{"a": 1, "a": 2}', kind=OCI_MANIFEST), ["appears twice"]),
        (Answer(endless=True, kind=OCI_MANIFEST), [f"more than {MAX_DOCUMENT} bytes"]),
        (
            Answer(body=GZIP_BOMB, kind=OCI_MANIFEST, headers={"Content-Encoding": "gzip"}),
            [f"more than {MAX_DOCUMENT} bytes"],
        ),
        (
            Answer(body=b"(\xb5/\xfd", kind=OCI_MANIFEST, headers={"Content-Encoding": "zstd"}),
            ["Content-Encoding 'zstd'"],
        ),
        (
            Answer(
                body=b"not gzip at all", kind=OCI_MANIFEST, headers={"Content-Encoding": "gzip"}
            ),
            ["not valid gzip"],
        ),
    ],
    ids=["deep", "array", "infinite", "duplicate-key", "endless", "gzip-bomb", "zstd", "bad-gzip"],
)
def test_hostile_manifest_is_one_error_line(
    hostile: tuple[str, type[Hostile]],
    capsys: pytest.CaptureFixture[str],
    answer: Answer,
    words: list[str],
) -> None:
    host, handler = hostile
    handler.answers[MANIFEST_PATH] = answer
    one_error(capsys, [f"docker://{host}/hostile/app:v1"], f"http://{host}/v2/hostile/app", *words)
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(404, DEEP), ["HTTP 404"]),
        (Answer(403, b'{"errors": [{"code": 7, "message": ["x"]}, 5]}'), ["HTTP 403", "(7)"]),
        (Answer(404, endless=True), ["HTTP 404"]),
        (Answer(401, b'{"errors": {"code": "x"}}'), ["HTTP 401"]),
        (Answer(404, b"(\xb5/\xfd", headers={"Content-Encoding": "zstd"}), ["HTTP 404"]),
    ],
    ids=["deep", "wrong-types", "endless", "errors-not-a-list", "zstd"],
)
def test_hostile_error_body_is_one_error_line(
    hostile: tuple[str, type[Hostile]],
    capsys: pytest.CaptureFixture[str],
    answer: Answer,
    words: list[str],
) -> None:
    host, handler = hostile
    handler.answers[MANIFEST_PATH] = answer
    one_error(capsys, [f"docker://{host}/hostile/app:v1"], *words)
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (DEEP, ["nested more than 64 levels", "/token"]),
        (b'{"token": 5}', ["answered without a token"]),
        (b'{"token": "t", "expires_in": "soon"}', ["'expires_in' that is not a number"]),
        (b'{"token": "t", "expires_in": 1e999}', ["out of range"]),
        (None, [f"more than {MAX_DOCUMENT} bytes", "/token"]),
    ],
    ids=["deep", "token-not-a-string", "expiry-not-a-number", "infinite-expiry", "endless"],
)
def test_hostile_token_answer_is_one_error_line(
    hostile: tuple[str, type[Hostile]],
    capsys: pytest.CaptureFixture[str],
    body: bytes | None,
    words: list[str],
) -> None:
    host, handler = hostile
    handler.bearer = True
    handler.answers["/token"] = Answer(endless=True) if body is None else Answer(body=body)
    one_error(capsys, [f"docker://{host}/hostile/app:v1"], *words)
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


def serve_image(handler: type[Hostile]) -> Digest:
    data = manifest()
    handler.answers[MANIFEST_PATH] = Answer(body=data, kind=OCI_MANIFEST)
    handler.answers[f"/v2/hostile/app/blobs/{Digest.of(CONFIG)}"] = Answer(body=CONFIG)
    return Digest.of(data)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(body=DEEP, kind=OCI_INDEX), ["nested more than 64 levels", "/referrers/"]),
        (
            Answer(body=json.dumps({"manifests": 5}).encode(), kind=OCI_INDEX),
            ["'manifests' that is not an array"],
        ),
        (Answer(endless=True, kind=OCI_INDEX), [f"more than {MAX_DOCUMENT} bytes"]),
    ],
    ids=["deep", "manifests-not-a-list", "endless"],
)
def test_hostile_referrers_index_is_one_error_line(
    hostile: tuple[str, type[Hostile]],
    capsys: pytest.CaptureFixture[str],
    answer: Answer,
    words: list[str],
) -> None:
    host, handler = hostile
    subject = serve_image(handler)
    handler.answers[f"/v2/hostile/app/referrers/{subject}"] = answer
    one_error(capsys, [f"docker://{host}/hostile/app:v1"], *words)
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


def test_a_good_image_from_the_same_server_inspects(
    hostile: tuple[str, type[Hostile]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: with sane answers the same command succeeds."""
    host, handler = hostile
    subject = serve_image(handler)
    assert main(["inspect", "--json", f"docker://{host}/hostile/app:v1"]) == 0
    assert json.loads(capsys.readouterr().out)["root"]["digest"] == str(subject)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(body=DEEP), ["nested more than 64 levels", "/tags/list"]),
        (Answer(body=b'{"tags": 5}'), ["'tags' that is not an array of strings"]),
        (Answer(body=b'{"tags": ["a", {"b": 1}]}'), ["'tags' that is not an array of strings"]),
        (Answer(endless=True), [f"more than {MAX_DOCUMENT} bytes"]),
    ],
    ids=["deep", "not-a-list", "not-strings", "endless"],
)
def test_hostile_tag_list_is_one_error(
    hostile: tuple[str, type[Hostile]], answer: Answer, words: list[str]
) -> None:
    host, handler = hostile
    handler.answers[r"/v2/hostile/app/tags/list"] = answer
    options = RegistryOptions(retry=RetryPolicy(tries=1))
    with RegistryClient(host, ANONYMOUS, options) as client, pytest.raises(RegistryError) as caught:
        client.list_tags("hostile/app")
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert all(word in message for word in words), message
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


def cache_manifest(blob: bytes) -> bytes:
    layer = {"mediaType": CACHE_TYPE, "digest": str(Digest.of(blob)), "size": len(blob)}
    return manifest({"artifactType": CACHE_TYPE, "layers": [layer]})


def build_from_cache(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """A one-file build into an OCI layout with ``--cache-from`` the hostile cache."""
    spec = write_toml(tmp_path, '[[layers]]\ncontent = [{ dst = "/etc/hi", text = "hi" }]\n')
    out = f"oci:{tmp_path / 'out'}:v1"
    cache = f"docker://{host}/ci/cache:layers"
    code = main(["build", "-q", "-f", str(spec), "-o", out, "--cache-from", cache])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("damage", ["deep-blob", "deep-manifest", "endless-manifest"])
def test_hostile_cache_gives_a_cold_build_and_one_warning(
    hostile: tuple[str, type[Hostile]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    host, handler = hostile
    data = cache_manifest(DEEP)
    answers = {
        "deep-blob": Answer(body=data, kind=OCI_MANIFEST),
        "deep-manifest": Answer(body=DEEP, kind=OCI_MANIFEST),
        "endless-manifest": Answer(endless=True, kind=OCI_MANIFEST),
    }
    handler.answers[r"/v2/ci/cache/manifests/.*"] = answers[damage]
    handler.answers[f"/v2/ci/cache/blobs/{Digest.of(DEEP)}"] = Answer(body=DEEP)
    code, err = build_from_cache(host, tmp_path, capsys)
    assert code == 0, err
    assert len(err.splitlines()) == 1 and err.startswith("bale: warning:"), err
    assert "Traceback" not in err and f"{host}/ci/cache" in err, err
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent


@pytest.mark.parametrize("damage", ["endless", "other-bytes", "longer"])
def test_a_hostile_kept_sbom_is_made_again_with_one_warning(
    hostile: tuple[str, type[Hostile]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    """A cache that names an SBOM for this very image (its memo key forced here) but
    serves endless, other or more bytes for it: the SBOM is made, one warning line."""
    host, handler = hostile
    monkeypatch.setattr(attach, "memo_key", lambda *args: "spdx-forced")
    kept = {"mediaType": "application/spdx+json", "digest": str(Digest.of(b"{}")), "size": 2}
    blob = json.dumps({"version": 1, "entries": {}, "documents": {"spdx-forced": kept}}).encode()
    handler.answers[r"/v2/ci/cache/manifests/.*"] = Answer(
        body=cache_manifest(blob), kind=OCI_MANIFEST
    )
    handler.answers[f"/v2/ci/cache/blobs/{Digest.of(blob)}"] = Answer(body=blob)
    handler.answers[f"/v2/ci/cache/blobs/{Digest.of(b'{}')}"] = {
        "endless": Answer(endless=True),
        "other-bytes": Answer(body=b"[]"),
        "longer": Answer(body=b"{}" * 1000),
    }[damage]
    code, err = build_from_cache(host, tmp_path, capsys)
    assert code == 0, err
    assert len(err.splitlines()) == 1 and "SBOM" in err and "not used" in err, err
    assert "Traceback" not in err
    assert all(sent <= SENT_BOUND for sent in handler.sent), handler.sent
    assert (tmp_path / "out" / "index.json").is_file()
