#!/usr/bin/env bash
# configure-security-updates.sh — install unattended-upgrades and turn it on for security updates.
#
# VMs created from the image then install security updates daily on their own
# (APT::Periodic::Unattended-Upgrade "1") from the distribution's security origin, without
# rebooting by themselves. Works on Debian and Ubuntu; the apt timers are enabled, not started.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf 'configure-security-updates: %s\n' "$*"; }

apt-get -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \
  install --no-install-recommends unattended-upgrades

cat >/etc/apt/apt.conf.d/20auto-upgrades <<'CONF'
// Managed by imageforge (provisioners/linux/configure-security-updates.sh).
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
CONF

# Lists in apt configuration add up, so this names the security origin whatever the
# distribution's 50unattended-upgrades says. ${distro_id} and ${distro_codename} are expanded
# by unattended-upgrades, not by the shell.
# shellcheck source=/dev/null
. /etc/os-release
case "${ID}" in
  ubuntu)
    # shellcheck disable=SC2016
    origins='Unattended-Upgrade::Allowed-Origins { "${distro_id}:${distro_codename}-security"; };'
    ;;
  debian)
    # shellcheck disable=SC2016
    origins='Unattended-Upgrade::Origins-Pattern { "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"; };'
    ;;
  *)
    echo "configure-security-updates: unsupported distribution '${ID}' (Debian or Ubuntu only)" >&2
    exit 1
    ;;
esac
cat >/etc/apt/apt.conf.d/52imageforge-unattended-upgrades <<CONF
// Managed by imageforge (provisioners/linux/configure-security-updates.sh).
${origins}
Unattended-Upgrade::Automatic-Reboot "false";
Unattended-Upgrade::Remove-Unused-Dependencies "true";
CONF

value="$(apt-config shell v APT::Periodic::Unattended-Upgrade)"
if [ "$value" != "v='1'" ]; then
  echo "configure-security-updates: APT::Periodic::Unattended-Upgrade is not 1 (${value})" >&2
  exit 1
fi

systemctl enable unattended-upgrades.service apt-daily.timer apt-daily-upgrade.timer
log "unattended security upgrades enabled"
