# Debian 12 (bookworm), Azure marketplace gen2 image, hardened and published to the gallery.
name           = "debian-12"
os             = "linux"
description    = "Debian 12 (bookworm) golden image, gen2"
version_scheme = "semver"

base_image = {
  publisher = "Debian"
  offer     = "debian-12"
  sku       = "12-gen2"
  version   = "latest"
}

gallery_image = {
  name               = "debian-12"
  publisher          = "imageforge"
  offer              = "debian"
  sku                = "12-gen2"
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

packages = ["curl", "jq", "ca-certificates"]

provisioners = [
  "install-updates.sh",
  "install-packages.sh",
  "install-azure-agent.sh",
  "configure-ssh-hardening.sh",
  "configure-time-sync.sh",
  "configure-security-updates.sh",
  "configure-image-marker.sh",
  "cleanup-build.sh",
]

test = {
  suite              = "tests/image/linux"
  vm_size            = "Standard_B2s"
  required_packages  = ["openssh-server", "waagent", "sudo", "curl", "jq", "unattended-upgrades"]
  forbidden_packages = ["telnetd", "rsh-server", "ftp", "talk"]
}
