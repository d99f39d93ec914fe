#!/usr/bin/env bash
# configure-kernel-hardening.sh — kernel network and memory hardening, applied at every boot.
#
# Writes /etc/sysctl.d/60-imageforge-hardening.conf with settings from the CIS Debian Linux
# benchmark's network and kernel sections: no ICMP redirects accepted or sent, martians
# logged, broadcast pings ignored, SYN cookies on, full address-space randomization, kernel
# pointers and the kernel log hidden from unprivileged users, no core dumps of setuid
# programs. systemd-sysctl applies the file at boot; nothing is applied to the running kernel
# here (the build VM is about to be generalized). IMAGEFORGE_ROOT (default /) is the tree to
# write into, so the script can be tested outside a VM.
set -euo pipefail

root="${IMAGEFORGE_ROOT:-/}"
target="${root%/}/etc/sysctl.d/60-imageforge-hardening.conf"
mkdir -p "$(dirname "$target")"
tmp="$(mktemp "${target}.XXXXXX")"
cat >"$tmp" <<'CONF'
# Written by imageforge (configure-kernel-hardening.sh); applied at boot by systemd-sysctl.
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.default.accept_redirects = 0
net.ipv4.conf.all.secure_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
net.ipv4.tcp_syncookies = 1
kernel.randomize_va_space = 2
kernel.kptr_restrict = 2
kernel.dmesg_restrict = 1
fs.suid_dumpable = 0
CONF
chmod 0644 "$tmp"
mv -f "$tmp" "$target"
printf 'configure-kernel-hardening: wrote %s (%s settings)\n' "$target" \
  "$(grep -c '^[a-z]' "$target")"
