#!/usr/bin/env bash
# install-azure-agent.sh — make sure the Azure Linux agent is installed and enabled.
#
# Azure needs the agent to report the VM ready, run extensions and deprovision the build VM
# (generalize.sh). Marketplace images ship it; minimal base images may not. The package is
# `waagent` on Debian and `walinuxagent` on Ubuntu; the service is walinuxagent.service on both.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf 'install-azure-agent: %s\n' "$*"; }

# shellcheck source=/dev/null
. /etc/os-release
case "${ID}" in
  debian) package=waagent ;;
  ubuntu) package=walinuxagent ;;
  *)
    echo "install-azure-agent: unsupported distribution '${ID}' (Debian or Ubuntu only)" >&2
    exit 1
    ;;
esac

if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
  log "${package} is already installed"
else
  log "installing ${package}"
  apt-get -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \
    install --no-install-recommends "$package"
fi

systemctl enable walinuxagent.service
log "walinuxagent.service enabled"
