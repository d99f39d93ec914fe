#!/usr/bin/env bash
# install-updates.sh — bring the base image fully up to date (apt-get full-upgrade).
#
# Runs first, as root, non-interactively. Waits for cloud-init and for other apt users
# (first-boot unattended-upgrades on Azure) instead of failing on a held dpkg lock, keeps
# locally modified configuration files, and removes packages nothing depends on any more.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_opts=(
  -y
  -o DPkg::Lock::Timeout=600
  -o Dpkg::Options::=--force-confdef
  -o Dpkg::Options::=--force-confold
)

log() { printf 'install-updates: %s\n' "$*"; }

# On Azure, cloud-init may still be configuring the VM (and running apt) when Packer connects.
if command -v cloud-init >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  log "waiting for cloud-init to finish"
  cloud-init status --wait >/dev/null || log "cloud-init reported an error; continuing"
fi

log "refreshing package lists"
apt-get -o DPkg::Lock::Timeout=600 update

log "upgrading all packages"
apt-get "${apt_opts[@]}" full-upgrade

log "removing packages that are no longer needed"
apt-get "${apt_opts[@]}" autoremove --purge

if [ -f /var/run/reboot-required ]; then
  log "a reboot is required; it happens when the image is first booted after generalization"
fi
log "done"
