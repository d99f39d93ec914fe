# Debian 12 (bookworm), gen2, with CIS-style kernel hardening and password quality rules on top
# of debian-12's baseline: the same templates and scripts, one more provisioner and more checks.
name           = "debian-12-hardened"
os             = "linux"
description    = "Debian 12 (bookworm) golden image, gen2, with CIS-style kernel hardening"
version_scheme = "semver"

base_image = {
  publisher = "Debian"
  offer     = "debian-12"
  sku       = "12-gen2"
  version   = "latest"
}

gallery_image = {
  name               = "debian-12-hardened"
  publisher          = "imageforge"
  offer              = "debian"
  sku                = "12-gen2-hardened"
  hyper_v_generation = "V2"
  security_type      = "TrustedLaunchSupported"
  os_state           = "Generalized"
}

build = {
  region           = "westeurope"
  vm_size          = "Standard_D2s_v5"
  allowed_vm_sizes = ["Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2s"]
}

communicator = {
  type     = "ssh"
  username = "packer"
}

target_regions = [
  { name = "westeurope", replicas = 1, storage_account_type = "Standard_LRS" },
  { name = "northeurope", replicas = 2, storage_account_type = "Standard_ZRS" },
  { name = "swedencentral", replicas = 1, storage_account_type = "Standard_LRS" },
]

packages = ["curl", "jq", "ca-certificates", "libpam-pwquality"]

provisioners = [
  "install-updates.sh",
  "install-packages.sh",
  "install-azure-agent.sh",
  "configure-ssh-hardening.sh",
  "configure-kernel-hardening.sh",
  "configure-time-sync.sh",
  "configure-security-updates.sh",
  "configure-image-marker.sh",
  "cleanup-build.sh",
]

test = {
  suite              = "tests/image/linux"
  vm_size            = "Standard_B2s"
  required_packages  = ["openssh-server", "waagent", "sudo", "curl", "jq", "unattended-upgrades",
  "libpam-pwquality"]
  forbidden_packages = ["telnetd", "rsh-server", "ftp", "talk", "telnet", "rsh-client", "nis"]
  sysctl = {
    "net.ipv4.conf.all.accept_redirects" = 0
    "net.ipv4.conf.all.send_redirects"   = 0
    "net.ipv4.conf.all.log_martians"     = 1
    "net.ipv4.tcp_syncookies"            = 1
    "kernel.randomize_va_space"          = 2
    "kernel.kptr_restrict"               = 2
    "kernel.dmesg_restrict"              = 1
    "fs.suid_dumpable"                   = 0
  }
}
