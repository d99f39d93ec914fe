#!/usr/bin/env bash
# cleanup-build.sh — remove what the build left behind, before generalize.sh.
#
# Package caches and lists, Packer's uploaded scripts and temporary files, shell and tool
# histories of root and every user, log contents (files are kept, emptied), the machine id
# (regenerated at first boot), cloud-init's and the Azure agent's per-instance state, crash
# dumps and DHCP leases. Safe to run twice; works in a chroot without systemd.
set -euo pipefail

log() { printf 'cleanup-build: %s\n' "$*"; }

log "package caches"
apt-get -y -o DPkg::Lock::Timeout=600 autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/*

log "Packer leftovers and temporary files"
# Packer uploads each script to /tmp (script_NNNN.sh) and keeps its files under /tmp/packer*;
# this script itself runs from there, which is fine: bash keeps the open file.
find /tmp /var/tmp -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +

log "shell and tool histories"
for home in /root /home/*; do
  [ -d "$home" ] || continue
  rm -f -- "$home"/.bash_history "$home"/.zsh_history "$home"/.sh_history \
    "$home"/.python_history "$home"/.lesshst "$home"/.viminfo "$home"/.wget-hsts \
    "$home"/.sudo_as_admin_successful
  rm -rf -- "$home"/.cache "$home"/.ansible
done
unset HISTFILE

log "logs"
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.xz' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 -- {} +
if [ -d /var/log/journal ]; then
  find /var/log/journal -mindepth 1 -delete
fi

log "machine identity"
if [ -e /etc/machine-id ]; then
  truncate -s 0 /etc/machine-id
fi
if [ -e /var/lib/dbus/machine-id ] || [ -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi
rm -f /var/lib/systemd/random-seed

log "cloud-init and Azure agent state"
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
else
  rm -rf /var/lib/cloud/instance /var/lib/cloud/instances/*
fi
# Keep /var/lib/waagent/ovf-env.xml: the generalization step (generalize.sh) reads the build
# user's name from it, and removes the agent's remaining state itself.
rm -rf /var/lib/waagent/history/* /var/lib/waagent/events/*

log "crash dumps and DHCP leases"
rm -rf /var/crash/* /var/lib/dhcp/*.leases /var/lib/NetworkManager/*.lease

sync
log "done"
