#!/usr/bin/env bash
# generalize.sh — deprovision the build VM so it can be captured as an image. Runs LAST.
#
# `waagent -force -deprovision+user` deletes the build user (Packer's communicator user) and
# its home, the SSH host keys (new ones are made at first boot), DHCP leases, the resolver
# configuration and the root password; then shell history is switched off and disks are
# flushed, as Packer's azure-arm documentation prescribes. Nothing may run after this script.
# Packer runs it with skip_clean (its user is gone afterwards, so Packer could not delete the
# uploaded copy), so the script removes that copy of itself before the disks are flushed.
set -euo pipefail

if ! command -v waagent >/dev/null 2>&1; then
  echo "generalize: waagent is not installed; run install-azure-agent.sh before this script" >&2
  exit 1
fi

waagent -force -deprovision+user
case "$0" in
  /tmp/script_*.sh) rm -f -- "$0" ;; # Packer's upload path (remote_folder /tmp, script_N.sh)
esac
export HISTSIZE=0 && sync
echo "generalize: deprovisioned; the VM must not be used again except to capture it"
