# Ubuntu 24.04 LTS server (noble), Azure marketplace gen2 image, hardened and published to the gallery.
name           = "ubuntu-24.04"
os             = "linux"
description    = "Ubuntu 24.04 LTS server golden image, gen2"
version_scheme = "semver"

base_image = {
  publisher = "Canonical"
  offer     = "ubuntu-24_04-lts"
  sku       = "server"
  version   = "latest"
}

gallery_image = {
  name               = "ubuntu-24.04"
  publisher          = "imageforge"
  offer              = "ubuntu"
  sku                = "24.04-lts-gen2"
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
  required_packages  = ["openssh-server", "walinuxagent", "sudo", "curl", "jq", "unattended-upgrades"]
  forbidden_packages = ["telnetd", "rsh-server", "ftp", "talk"]
}
