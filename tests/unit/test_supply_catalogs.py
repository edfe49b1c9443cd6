"""Package catalogs on small hand-made filesystems: what each record format yields.

The judged end-to-end checks (a real Debian tree against dpkg-query and
importlib.metadata) are in tests/integration/test_sbom.py; these pin the
edge cases of each parser.
"""

from __future__ import annotations

import json

import pytest
from license_expression import (
    ExpressionError,
    Licensing,
    get_license_index,
    get_spdx_licensing,
)

from builder.errors import ImageError
from builder.model import Digest
from builder.supply.apk import apk_packages
from builder.supply.dpkg import dpkg_packages
from builder.supply.licenses import license_ref, spdx_license
from builder.supply.npm import npm_packages
from builder.supply.packages import distro_of
from builder.supply.pydist import python_packages
from builder.supply.rootfs import Rootfs
from builder.supply.sbom import CATALOGS, wanted

BASE = Digest.of(b"base layer")
TOP = Digest.of(b"top layer")

STATUS = b"""Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
"""

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def rootfs(files: dict[str, bytes], origin: dict[str, Digest] | None = None) -> Rootfs:
    layers = {path: BASE for path in files} | (origin or {})
    return Rootfs("test image", files, layers, ())


def test_dpkg_lists_installed_packages_with_distro_purls_and_layers() -> None:
    fs = rootfs(
        {
            "var/lib/dpkg/status": STATUS,
            "usr/lib/os-release": OS_RELEASE,
            "usr/share/doc/bash/copyright": b"Files: *\nLicense: GPL-3+\n\nLicense: GPL-3+\n text\n",
        },
        {"var/lib/dpkg/info/libc6:amd64.list": TOP},
    )
    packages = list(dpkg_packages(fs, distro_of(fs)))
    assert [(p.name, p.version) for p in packages] == [
        ("bash", "5.2.15-2+b2"),
        ("libc6", "2.36-9+deb12u4"),
    ]
    bash, libc = packages
    assert bash.purl == "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"
    assert libc.purl.endswith("&upstream=glibc")
    assert bash.license == "GPL-3+"
    assert spdx_license(bash.license).expression == "GPL-3.0-or-later"
    assert (bash.layer, libc.layer) == (BASE, TOP)


def test_distroless_status_d_is_read_and_md5sums_are_not() -> None:
    record = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
    fs = rootfs(
        {
            "var/lib/dpkg/status.d/tzdata": record,
            "var/lib/dpkg/status.d/tzdata.md5sums": b"d41d8cd9  usr/share/zoneinfo/UTC\n",
        }
    )
    assert [(p.name, p.path) for p in dpkg_packages(fs, distro_of(fs))] == [
        ("tzdata", "var/lib/dpkg/status.d/tzdata")
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (b"Package: a\nthis is not a field\n", "line 2"),
        (b" continuation first\n", "line 1"),
        (b"Version: 1\n", "no Package field"),
        (b"Package: \xff\xfe\n", "not UTF-8"),
    ],
)
def test_a_corrupt_status_file_is_one_clear_error(status: bytes, expected: str) -> None:
    fs = rootfs({"var/lib/dpkg/status": status})
    with pytest.raises(ImageError) as caught:
        list(dpkg_packages(fs, distro_of(fs)))
    message = str(caught.value)
    assert expected in message
    assert "/var/lib/dpkg/status" in message and "--no-sbom" in message
    assert "\n" not in message


def test_apk_installed_database() -> None:
    db = b"C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\nR:lib/ld-musl.so.1\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\n"
    fs = rootfs({"lib/apk/db/installed": db, "etc/os-release": b"ID=alpine\nVERSION_ID=3.20.0\n"})
    packages = sorted(apk_packages(fs, distro_of(fs)))
    assert [(p.name, p.version, p.license) for p in packages] == [
        ("busybox", "1.36.1-r29", "GPL-2.0-only"),
        ("musl", "1.2.5-r0", "MIT"),
    ]
    assert packages[1].purl == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0"


def test_python_dist_info_egg_info_dir_and_file() -> None:
    site = "usr/lib/python3/dist-packages"
    fs = rootfs(
        {
            f"{site}/Foo_Bar-1.0.dist-info/METADATA": b"Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0\nLicense-Expression: MIT OR Apache-2.0\n",
            f"{site}/old-2.0.egg-info/PKG-INFO": b"Metadata-Version: 1.1\nName: old\nVersion: 2.0\nLicense: UNKNOWN\n",
            f"{site}/single-3.0.egg-info": b"Metadata-Version: 1.1\nName: single\nVersion: 3.0\nLicense: BSD\n",
            f"{site}/Foo_Bar-1.0.dist-info/RECORD": b"",
        }
    )
    packages = sorted(python_packages(fs, distro_of(fs)))
    assert [(p.name, p.version, p.license) for p in packages] == [
        ("Foo_Bar", "1.0", "MIT OR Apache-2.0"),
        ("old", "2.0", ""),
        ("single", "3.0", "BSD"),
    ]
    assert packages[0].purl == "pkg:pypi/foo-bar@1.0"


def test_npm_packages_scoped_and_nested_but_not_package_internals() -> None:
    def manifest(name: str, version: str, license: object) -> bytes:
        return json.dumps({"name": name, "version": version, "license": license}).encode()

    fs = rootfs(
        {
            "app/node_modules/left-pad/package.json": manifest("left-pad", "1.3.0", "WTFPL"),
            "app/node_modules/@types/node/package.json": manifest("@types/node", "20.1.0", "MIT"),
            "app/node_modules/a/node_modules/b/package.json": manifest(
                "b", "2.0.0", {"type": "ISC"}
            ),
            "app/node_modules/a/lib/package.json": manifest("internal", "0", "MIT"),
            "app/package.json": manifest("app", "1.0.0", "MIT"),
        }
    )
    assert not wanted("app/node_modules/a/lib/package.json")
    packages = sorted(npm_packages(fs, distro_of(fs)))
    assert [(p.name, p.license) for p in packages] == [
        ("@types/node", "MIT"),
        ("b", "ISC"),
        ("left-pad", "WTFPL"),
    ]
    assert packages[0].purl == "pkg:npm/%40types/node@20.1.0"


def test_npm_package_json_nested_past_the_parser_is_not_a_package() -> None:
    """json gives up on deep nesting with a RecursionError, not a ValueError."""
    fs = rootfs({"app/node_modules/deep/package.json": b"[" * 100_000})
    assert list(npm_packages(fs, distro_of(fs))) == []


def test_every_catalog_reads_only_what_wanted_keeps() -> None:
    paths = [
        "var/lib/dpkg/status",
        "var/lib/dpkg/status.d/x",
        "lib/apk/db/installed",
        "usr/lib/python3.11/site-packages/x-1.dist-info/METADATA",
        "srv/node_modules/x/package.json",
        "usr/lib/os-release",
    ]
    assert all(wanted(p) for p in paths)
    assert not any(wanted(p) for p in ["etc/passwd", "var/lib/dpkg/info/bash.list", "x/METADATA"])
    # Four catalogs read kept files; the fifth (Go) reads the excerpts PICKER keeps.
    assert len(CATALOGS) == 5


@pytest.mark.parametrize(
    ("declared", "expression", "refs"),
    [
        ("mit", "MIT", ()),
        ("GPL-2+ or Artistic", "GPL-2.0-or-later OR LicenseRef-Artistic", ("LicenseRef-Artistic",)),
        ("Apache 2.0", "LicenseRef-Apache-2.0", ("LicenseRef-Apache-2.0",)),
        ("((", "LicenseRef-unknown", ("LicenseRef-unknown",)),
    ],
)
def test_licences_become_valid_spdx_expressions(
    declared: str, expression: str, refs: tuple[str, ...]
) -> None:
    license = spdx_license(declared)
    assert license is not None
    assert license.expression == expression
    assert tuple(ref for ref, _ in license.extracted) == refs


def _parser_with_term(parser: Licensing, text: str) -> str | None:
    """What license-expression's full SPDX parser makes of a WITH term (the judge)."""
    try:
        info = parser.validate(text)
    except (ExpressionError, AttributeError):
        return None
    found = str(info.normalized_expression or "")
    return None if info.errors or not found or "LicenseRef-" in found else found


def test_with_terms_resolve_as_the_full_spdx_parser_does() -> None:
    """Every exception (and its aliases) after licences, aliases, Debian's short names and
    nonsense: the index lookup names what the parser's validation names, or nothing."""
    names: dict[bool, list[str]] = {True: [], False: []}
    for entry in get_license_index():
        if entry.get("spdx_license_key"):
            aliases = entry.get("other_spdx_license_keys") or []
            names[bool(entry.get("is_exception"))] += [entry["spdx_license_key"], *aliases]
    licences = [*names[False][::40], "GPL-2.0+", "gpl 2.0+", "GPL-2+", "MIT", "nonsense"]
    exceptions = [*names[True], "OpenSSL exception", "MIT", "nonsense"]
    terms = [f"{lic} with {exc}" for n, lic in enumerate(licences) for exc in exceptions[n::9]]
    terms += ["GPL-3+ with Autoconf exception", "GPL-2.0+ WITH Classpath-exception-2.0 WITH x"]
    terms += ["GPL-2.0-or-later WITH Classpath-exception-2.0", "mit With LLVM-exception"]
    found = [(term, spdx_license(term)) for term in terms]
    parser = get_spdx_licensing()
    resolved = [term for term, license in found if license is not None and license.is_spdx]
    assert len(resolved) > 100  # the sample names real pairs, not only nonsense
    for term, license in found:
        assert license is not None
        expected = _parser_with_term(parser, term)
        assert license.expression == (expected or license_ref(term)), term
