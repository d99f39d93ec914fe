#!/usr/bin/env bash
# install-packages.sh — install the image's extra packages (IMAGEFORGE_PACKAGES).
#
# IMAGEFORGE_PACKAGES is a space-separated list of Debian package names, each optionally
# pinned as name=version; it may be empty. Recommends are not installed, so the image holds
# what was asked for and its dependencies only. Every package is checked afterwards.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf 'install-packages: %s\n' "$*"; }

read -r -a packages <<<"${IMAGEFORGE_PACKAGES:-}"
if [ "${#packages[@]}" -eq 0 ]; then
  log "IMAGEFORGE_PACKAGES is empty: nothing to install"
  exit 0
fi

for package in "${packages[@]}"; do
  if ! [[ "$package" =~ ^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$ ]]; then
    echo "install-packages: '${package}' in IMAGEFORGE_PACKAGES is not a Debian package name" >&2
    exit 1
  fi
done

log "installing: ${packages[*]}"
apt-get -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef \
  -o Dpkg::Options::=--force-confold install --no-install-recommends "${packages[@]}"

for package in "${packages[@]}"; do
  name="${package%%=*}"
  if ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed'; then
    echo "install-packages: ${name} is not installed after apt-get install" >&2
    exit 1
  fi
done
log "installed ${#packages[@]} package(s)"
