#!/usr/bin/env bash
# configure-time-sync.sh — make sure the clock is kept in sync, with one time daemon enabled.
#
# On Azure (a Hyper-V PTP clock is present) chrony is used with the host's clock as its
# reference (refclock PHC /dev/ptp_hyperv), as Microsoft recommends for Linux VMs; a udev rule
# gives the clock its stable /dev/ptp_hyperv name on every boot. Elsewhere the existing daemon
# is kept: chrony if installed, otherwise systemd-timesyncd (installed when missing).
# Services are enabled, and restarted only when systemd is running (not in a chroot).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf 'configure-time-sync: %s\n' "$*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install() {
  apt-get -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \
    install --no-install-recommends "$@"
}

hyperv_ptp=""
for clock in /sys/class/ptp/ptp*/clock_name; do
  [ -r "$clock" ] || continue
  if [ "$(cat "$clock")" = "hyperv" ]; then
    hyperv_ptp="/dev/$(basename "$(dirname "$clock")")"
  fi
done

if [ -n "$hyperv_ptp" ]; then
  log "Hyper-V PTP clock found at ${hyperv_ptp}: using chrony with it as reference clock"
  installed chrony || apt_install chrony
  cat >/etc/udev/rules.d/99-imageforge-ptp-hyperv.rules <<'RULE'
# Managed by imageforge: stable name for the Azure host's PTP clock (used by chrony).
SUBSYSTEM=="ptp", ATTR{clock_name}=="hyperv", SYMLINK += "ptp_hyperv"
RULE
  [ -e /dev/ptp_hyperv ] || ln -s "$(basename "$hyperv_ptp")" /dev/ptp_hyperv
  install -d -m 0755 /etc/chrony/conf.d
  cat >/etc/chrony/conf.d/imageforge-azure.conf <<'CONF'
# Managed by imageforge: the Azure host clock is the reference; NTP sources stay as fallback.
refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0 stratum 2
makestep 1.0 -1
CONF
  # chrony.conf of Debian 12 and Ubuntu 24.04 reads conf.d; older files may not.
  if ! grep -Eq '^[[:space:]]*confdir[[:space:]]+/etc/chrony/conf\.d' /etc/chrony/chrony.conf; then
    printf 'confdir /etc/chrony/conf.d\n' >>/etc/chrony/chrony.conf
  fi
  service=chrony.service
elif installed chrony; then
  log "chrony is installed: keeping it"
  service=chrony.service
else
  installed systemd-timesyncd || apt_install systemd-timesyncd
  service=systemd-timesyncd.service
fi

systemctl enable "$service"
log "enabled ${service}"
if [ -d /run/systemd/system ]; then
  systemctl restart "$service"
  log "restarted ${service}"
fi
