#!/usr/bin/env bash
# configure-ssh-hardening.sh — harden sshd with a drop-in in /etc/ssh/sshd_config.d/.
#
# Key-only logins, no root login, no keyboard-interactive or empty passwords, no forwarding
# of agents or X11, modern key exchange, ciphers and MACs. sshd uses the first value it reads
# for a keyword, so the drop-in is named to sort before cloud-init's and the distribution's
# drop-ins, and the main config is made to include the drop-in directory before anything else.
# The result is validated with `sshd -t`; sshd is reloaded only when systemd is running.
#
# IMAGEFORGE_ROOT (default "/") writes into another root filesystem (used by the unit tests);
# validation and reload are skipped there.
set -euo pipefail

root="${IMAGEFORGE_ROOT:-/}"
root="${root%/}"
ssh_dir="${root}/etc/ssh"
main_config="${ssh_dir}/sshd_config"
dropin_dir="${ssh_dir}/sshd_config.d"
dropin="${dropin_dir}/01-imageforge-hardening.conf"
include_line='Include /etc/ssh/sshd_config.d/*.conf'

log() { printf 'configure-ssh-hardening: %s\n' "$*"; }

if [ ! -f "$main_config" ]; then
  echo "configure-ssh-hardening: ${main_config} does not exist; is openssh-server installed?" >&2
  exit 1
fi

install -d -m 0755 "$dropin_dir"
tmp="$(mktemp "${dropin}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<'CONF'
# Managed by imageforge (provisioners/linux/configure-ssh-hardening.sh). Do not edit:
# the next image build overwrites this file. Site changes belong in a later drop-in only
# for keywords not set here (sshd uses the first value it reads).
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PubkeyAuthentication yes
HostbasedAuthentication no
IgnoreRhosts yes
PermitUserEnvironment no
AllowAgentForwarding no
X11Forwarding no
MaxAuthTries 4
MaxSessions 10
LoginGraceTime 30
ClientAliveInterval 300
ClientAliveCountMax 2
UseDNS no
LogLevel VERBOSE
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256
CONF
chmod 0644 "$tmp"
mv -f "$tmp" "$dropin"
trap - EXIT
log "wrote ${dropin#"$root"}"

# The include must come before any other directive, or the main config's values win.
first_directive="$(grep -Ev '^[[:space:]]*(#|$)' "$main_config" | head -n 1 || true)"
if [ "$first_directive" != "$include_line" ]; then
  tmp_main="$(mktemp "${main_config}.XXXXXX")"
  {
    printf '%s\n' "$include_line"
    grep -Ev '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf[[:space:]]*$' \
      "$main_config" || true
  } >"$tmp_main"
  chmod --reference="$main_config" "$tmp_main"
  mv -f "$tmp_main" "$main_config"
  log "made ${main_config#"$root"} include the drop-in directory first"
fi

if [ -n "$root" ]; then
  log "IMAGEFORGE_ROOT=${root}: skipping sshd -t and reload"
  exit 0
fi

# Ubuntu 24.04 starts sshd by socket activation, so the privilege separation directory that
# `sshd -t` insists on may not exist yet.
install -d -m 0755 /run/sshd
sshd -t -f "$main_config"
log "sshd -t: configuration is valid"

if [ -d /run/systemd/system ]; then
  systemctl try-reload-or-restart ssh.service
  log "reloaded ssh.service"
fi
