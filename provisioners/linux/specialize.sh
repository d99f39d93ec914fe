#!/usr/bin/env bash
# specialize.sh — the last step of a Specialized image (gallery_image.os_state = "Specialized"),
# in place of generalize.sh. Runs LAST.
#
# A specialized image keeps what a generalized one loses: its accounts, host keys and machine
# identity (Azure provisions nothing on VMs made from it, and they are created without
# osProfile). What must not outlive the build is its credential: the build user keeps its
# account but loses its SSH keys, its password (locked) and its sudo rule, and the agent's
# provisioning document of the build VM (which names its keys) is removed. A test VM is later
# given a per-run key of its own through Run Command, on that VM only.
# Packer runs it with skip_clean (the build user can no longer sudo afterwards), so the script
# removes its uploaded copy itself before the disks are flushed.
set -euo pipefail

log() { printf 'specialize: %s\n' "$*"; }

user="${SUDO_USER:-}"
if [ -z "$user" ] || [ "$user" = "root" ]; then
  echo "specialize: run through sudo as the build user (SUDO_USER is '${user}')" >&2
  exit 1
fi
home="$(getent passwd "$user" | cut -d: -f6)"
if [ -z "$home" ]; then
  echo "specialize: the build user ${user} does not exist" >&2
  exit 1
fi

log "removing the SSH keys of the build user ${user}"
rm -f -- "$home/.ssh/authorized_keys" "$home/.ssh/authorized_keys2"
log "locking the password of ${user}"
usermod --lock "$user"
log "removing the build user's sudo rule and the build VM's provisioning document"
rm -f /etc/sudoers.d/waagent /var/lib/waagent/ovf-env.xml
rm -f -- "$home/.bash_history" /root/.bash_history
case "$0" in
  /tmp/script_*.sh) rm -f -- "$0" ;; # Packer's upload path (remote_folder /tmp, script_N.sh)
esac
export HISTSIZE=0 && sync
log "done: the VM keeps its identity and no credential of the build"
