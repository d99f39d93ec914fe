# Windows Server 2022 Datacenter: Azure Edition, gen2, hardened and published to the gallery.
name           = "windows-2022"
os             = "windows"
description    = "Windows Server 2022 Datacenter: Azure Edition golden image, gen2"
version_scheme = "semver"

base_image = {
  publisher = "MicrosoftWindowsServer"
  offer     = "WindowsServer"
  sku       = "2022-datacenter-azure-edition"
  version   = "latest"
}

gallery_image = {
  name               = "windows-2022"
  publisher          = "imageforge"
  offer              = "windowsserver"
  sku                = "2022-datacenter-azure-edition"
  hyper_v_generation = "V2"
  security_type      = "TrustedLaunchSupported"
  os_state           = "Generalized"
}

build = {
  region           = "westeurope"
  vm_size          = "Standard_D4s_v5"
  allowed_vm_sizes = ["Standard_D4s_v5", "Standard_D8s_v5"]
}

communicator = {
  type     = "winrm"
  username = "packer"
}

target_regions = [
  { name = "westeurope", replicas = 1, storage_account_type = "Standard_LRS" },
  { name = "northeurope", replicas = 1, storage_account_type = "Standard_LRS" },
]

features = ["Web-Server"]

provisioners = [
  "Install-WindowsUpdates.ps1",
  "Install-WindowsFeatures.ps1",
  "Configure-WinRM.ps1",
  "Configure-Firewall.ps1",
  "Configure-RemoteDesktop.ps1",
  "Configure-Defender.ps1",
  "Configure-ImageMarker.ps1",
  "Remove-BuildLeftovers.ps1",
]

test = {
  suite             = "tests/image/windows"
  vm_size           = "Standard_D2s_v5"
  required_features = ["Web-Server"]
}
