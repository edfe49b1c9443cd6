#!/usr/bin/env bash
# Run bale's whole test suite, installing whatever it needs first:
# Debian's judges (registry, skopeo, umoci, runc, busybox) and the Python extras.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(skopeo umoci docker-registry runc podman busybox-static apache2-utils libcap2-bin libmagic1 pigz debootstrap)
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

python3 -m pip install -q -e '.[test]'
exec python3 -m pytest -q -p no:cacheprovider "$@"
