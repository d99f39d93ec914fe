#!/usr/bin/env bash
# configure-image-marker.sh — write /etc/imageforge-release, the image's identity card.
#
# KEY=VALUE lines that say which image definition, version and source commit a VM was built
# from, and when:
#   IMAGEFORGE_IMAGE, IMAGEFORGE_VERSION, IMAGEFORGE_SOURCE_COMMIT, IMAGEFORGE_BUILD_DATE
# The first three come from the environment of the same names and must be set (Packer passes
# them); IMAGEFORGE_BUILD_DATE defaults to now, in UTC. The Testinfra suite checks the file
# against the image and version under test, and uses its age to prove that the SSH host keys
# were regenerated after the build.
#
# IMAGEFORGE_ROOT (default "/") writes into another root filesystem (used by the unit tests).
set -euo pipefail

root="${IMAGEFORGE_ROOT:-/}"
root="${root%/}"
marker="${root}/etc/imageforge-release"

fail() {
  echo "configure-image-marker: $*" >&2
  exit 1
}

require() {
  local name="$1" pattern="$2" value
  value="${!name:-}"
  [ -n "$value" ] || fail "${name} is not set; Packer must pass it to this script"
  [[ "$value" =~ $pattern ]] || fail "${name}='${value}' is not valid (expected ${pattern})"
}

require IMAGEFORGE_IMAGE '^[A-Za-z0-9][A-Za-z0-9._-]*$'
require IMAGEFORGE_VERSION '^[0-9]+\.[0-9]+\.[0-9]+$'
require IMAGEFORGE_SOURCE_COMMIT '^[0-9a-f]{7,40}$|^unknown$'
build_date="${IMAGEFORGE_BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
[[ "$build_date" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] \
  || fail "IMAGEFORGE_BUILD_DATE='${build_date}' is not a UTC time like 2024-01-31T12:00:00Z"

install -d -m 0755 "${root}/etc"
tmp="$(mktemp "${marker}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
{
  printf 'IMAGEFORGE_IMAGE=%s\n' "$IMAGEFORGE_IMAGE"
  printf 'IMAGEFORGE_VERSION=%s\n' "$IMAGEFORGE_VERSION"
  printf 'IMAGEFORGE_SOURCE_COMMIT=%s\n' "$IMAGEFORGE_SOURCE_COMMIT"
  printf 'IMAGEFORGE_BUILD_DATE=%s\n' "$build_date"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$marker"
trap - EXIT
printf 'configure-image-marker: wrote %s for %s %s\n' \
  "/etc/imageforge-release" "$IMAGEFORGE_IMAGE" "$IMAGEFORGE_VERSION"
