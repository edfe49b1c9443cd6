"""The docs stay true to the code: whole tables, keys the parser knows, real install steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from builder.errors import SpecError
from builder.spec.load import load, parse_base
from tests.helpers import write_toml

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
MARKDOWN = MarkdownIt("commonmark").enable("table")


def _tokens(path: Path) -> list[Token]:
    return MARKDOWN.parse(path.read_text())


def tables(path: Path) -> list[tuple[str, list[list[str]]]]:
    """Each table's heading (the nearest one above it) and its rows of cell text."""
    found: list[tuple[str, list[list[str]]]] = []
    heading, rows, row = "", [], []
    tokens = _tokens(path)
    for i, token in enumerate(tokens):
        if token.type == "inline" and tokens[i - 1].type == "heading_open":
            heading = token.content
        elif token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and tokens[i - 1].type in {"td_open", "th_open"}:
            row.append(token.content)
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type == "table_close":
            found.append((heading, rows[1:]))
    return found


def section(path: Path, heading: str) -> str:
    """The markdown text under ``## heading`` up to the next heading of that level."""
    text = path.read_text()
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_table_row_falls_out_of_its_table(path: Path) -> None:
    """A blank line inside a table ends it: the rows after it render as a paragraph."""
    tokens = _tokens(path)
    stray = [
        f"{path.name}:{t.map[0] + 1 if t.map else '?'}: {t.content.splitlines()[0]}"
        for i, t in enumerate(tokens)
        if t.type == "inline" and tokens[i - 1].type == "paragraph_open"
        if t.content.lstrip().startswith("|")
    ]
    assert not stray, "table rows outside a table:\n" + "\n".join(stray)


def _known_layer_keys(tmp_path: Path) -> set[str]:
    """The keys the parser accepts in [[layers]], from its own unknown-key message."""
    write_toml(tmp_path, '[[layers]]\nzzz_not_a_key = 1\ncontent = [{ dst = "/a", text = "" }]\n')
    with pytest.raises(SpecError) as caught:
        load(tmp_path / "image.toml")
    listed = re.search(r"known keys: ([^)]*)\)", str(caught.value))
    assert listed, str(caught.value)
    return {key.strip() for key in listed.group(1).split(",")}


def test_layers_table_documents_keys_the_parser_knows(tmp_path: Path) -> None:
    (rows,) = [
        rows for heading, rows in tables(ROOT / "docs" / "image-toml.md") if heading == "[[layers]]"
    ]
    documented = {row[0].strip("`") for row in rows}
    assert "platforms" in documented and "content" in documented
    assert documented <= _known_layer_keys(tmp_path)


def test_registry_base_examples_parse_as_documented() -> None:
    """docs/bases.md's registry base table: each `base =` value means what it says."""
    (rows,) = [
        rows for heading, rows in tables(ROOT / "docs" / "bases.md") if heading == "Registry bases"
    ]
    assert len(rows) >= 3
    for written, meaning in ((row[0], row[1]) for row in rows):
        value = written.strip("`").strip('"')
        base = parse_base(value, ROOT)
        assert base.transport == "docker", written
        assert f"`{base.reference}`" in meaning, (written, base.reference)


def _test_script_packages() -> list[str]:
    """The `debs=( ... )` list of scripts/test.sh, comments dropped."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    body = re.search(r"^debs=\((.*?)^\)", script, re.S | re.M)
    assert body, "scripts/test.sh has no debs=( ... ) list"
    return " ".join(line.split("#")[0] for line in body.group(1).splitlines()).split()


def test_readme_leaves_the_apt_list_to_scripts_test_sh() -> None:
    """One list of Debian packages: the README points at it instead of copying part of it."""
    packages = _test_script_packages()
    assert "python3-venv" in packages and "skopeo" in packages
    text = section(ROOT / "README.md", "Two commands")
    after_command_2 = text.split("bash scripts/test.sh", 1)[1]
    assert "scripts/test.sh" in after_command_2
    copied = [p for p in packages if re.search(rf"`{re.escape(p)}`", after_command_2)]
    assert not copied, f"README repeats part of scripts/test.sh's list: {copied}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_pip_installs_only_what_exists(path: Path) -> None:
    """bale is not on PyPI: `pip install bale` (or bale[...]) cannot work."""
    wrong = re.findall(r"pip install (?:-\S+ )*(bale\b\S*)", path.read_text())
    assert not wrong, f"{path.name}: {wrong}; install from a checkout or a git URL"


def test_ci_runs_readme_command_2_with_ci_true() -> None:
    command = re.findall(r"```sh\n(.*?)\n```", section(ROOT / "README.md", "Two commands"), re.S)
    lines = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and line[0] != "#"
    ]
    assert lines[-1] == f"exec {command[1]}"
    assert "export CI=true" in lines[:-1]


def test_test_script_installs_nothing_into_the_system_python() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    pips = re.findall(r"^.*pip install.*$", script, re.M)
    assert pips and all(line.lstrip().startswith('"$venv/bin/') for line in pips), pips


def _help_texts(capsys: pytest.CaptureFixture[str]) -> str:
    from builder.cli.main import main

    texts = []
    for command in (["build"], ["inspect"], ["diff"], ["lock"], ["login"], ["logout"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        texts.append(capsys.readouterr().out)
    return "\n".join(texts)


def test_registries_md_names_only_real_flags(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "registries.md").read_text()
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    assert {"--ca-cert", "--insecure-registry", "--verbose", "--push"} <= flags
    known = set(re.findall(r"--[a-z][a-z-]+", _help_texts(capsys)))
    assert flags <= known, sorted(flags - known)


def test_registries_md_quotes_messages_bale_prints() -> None:
    """Each troubleshooting row starts from words that occur in bale's own source."""
    (rows,) = [
        rows
        for heading, rows in tables(ROOT / "docs" / "registries.md")
        if heading == "Troubleshooting"
    ]
    source = "\n".join(p.read_text() for p in (ROOT / "builder").rglob("*.py"))
    for row in rows:
        quoted = row[0].split("`")[1]
        # Placeholders (HOST, NAME, N), "..." and numbers stand for what bale fills in.
        pieces = [p.strip(" ;:()'") for p in re.split(r"\.\.\.|\b[A-Z][A-Z_]*\b|\d+", quoted)]
        assert any(pieces), row[0]
        for piece in (p for p in pieces if len(p) > 3):
            assert piece in source, (row[0], piece)


def test_architecture_registries_section_names_real_modules() -> None:
    text = section(ROOT / "docs" / "ARCHITECTURE.md", "Registries")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    assert len(named) >= 8
    found = [*(ROOT / "builder").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    modules = {str(p.relative_to(ROOT)) for p in found}
    missing = [n for n in named if not any(m == n or m.endswith("/" + n) for m in modules)]
    assert not missing, missing
