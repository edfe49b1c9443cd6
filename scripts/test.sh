#!/usr/bin/env bash
# Run bale's whole test suite, installing whatever it needs first: the Debian
# packages below (the independent judges and what the tests use), then bale and
# its test extras in a virtual environment, .venv-test, so the system Python is
# never touched (PEP 668). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one list of Debian packages the suite needs (README.md points here).
debs=(
  python3-venv     # the virtual environment below, and README command 1's test
  skopeo umoci runc podman docker-registry   # judges: copy, unpack, run, a registry
  busybox-static   # a static shell to run inside test images
  qemu-user-static # runs the arm64 example image under runc on an amd64 machine
  apache2-utils    # htpasswd for the registry's basic auth
  libcap2-bin      # setcap/getcap, to judge file capabilities
  libmagic1        # python-magic's library (bale's architecture check)
  pigz             # the benchmark's reference compressor
  debootstrap      # the Debian root some tests build in (tests/debian.py)
  openssl          # makes the signing tests' keys and checks signatures independently
  golang-go        # builds a Go program and judges the SBOM's Go modules (go version -m)
)
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

venv=.venv-test
if ! "$venv/bin/python" -c "" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -e '.[test]'
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
