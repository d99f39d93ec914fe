source "azure-arm" "windows-2022" {
  subscription_id    = var.subscription_id
  client_id          = var.client_id
  client_secret      = var.client_secret
  tenant_id          = var.tenant_id
  use_azure_cli_auth = var.use_azure_cli_auth

  os_type         = "Windows"
  image_publisher = "MicrosoftWindowsServer"
  image_offer     = "WindowsServer"
  image_sku       = "2022-datacenter-azure-edition"
  image_version   = var.base_image_version
  location        = "westeurope"
  vm_size         = "Standard_D4s_v5"
  public_ip_sku   = "Standard"
  azure_tags      = local.version_tags

  security_type       = "TrustedLaunch"
  secure_boot_enabled = true
  vtpm_enabled        = true

  communicator   = "winrm"
  winrm_username = "packer"
  winrm_use_ssl  = true
  winrm_insecure = true
  winrm_timeout  = "30m"

  # Publish to the build region only, excluded from latest: replication and promotion are
  # separate, later steps (invoke replicate, invoke promote).
  shared_gallery_image_version_exclude_from_latest = true
  shared_image_gallery_timeout                     = "2h"

  shared_image_gallery_destination {
    subscription            = var.subscription_id
    resource_group          = "rg-imageforge"
    gallery_name            = "imageforge"
    image_name              = local.gallery_image_name
    image_version           = var.image_version
    storage_account_type    = "Standard_LRS"
    use_shallow_replication = var.preview

    target_region {
      name     = "westeurope"
      replicas = 1
    }
  }
}
