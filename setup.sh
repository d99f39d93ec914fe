#!/usr/bin/env bash
# setup.sh — prepare a fresh Debian/Ubuntu machine for imageforge (run as root).
#
# Installs the Debian packages imageforge uses (Packer; debootstrap and OpenSSH for the sandbox;
# ShellCheck and yamllint for the tests), creates .venv and installs imageforge with its test
# extras into it. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

packages=(packer debootstrap openssh-server openssh-client shellcheck yamllint git ca-certificates)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: installing ${missing[*]} needs root: run it with sudo" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup.sh: imageforge needs Python >= 3.11 (found $(python3 --version))" >&2
  exit 1
}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup.sh: ready — packer $(packer version | head -n1 | tr -d 'Packer v'), $(.venv/bin/python --version)"
