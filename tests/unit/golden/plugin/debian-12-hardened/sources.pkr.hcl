source "azure-arm" "debian-12-hardened" {
  subscription_id    = var.subscription_id
  client_id          = var.client_id
  client_secret      = var.client_secret
  tenant_id          = var.tenant_id
  use_azure_cli_auth = var.use_azure_cli_auth

  os_type         = "Linux"
  image_publisher = "Debian"
  image_offer     = "debian-12"
  image_sku       = "12-gen2"
  image_version   = var.base_image_version
  location        = "westeurope"
  vm_size         = "Standard_D2s_v5"
  public_ip_sku   = "Standard"
  azure_tags      = local.version_tags

  security_type       = "TrustedLaunch"
  secure_boot_enabled = true
  vtpm_enabled        = true

  communicator = "ssh"
  ssh_username = "packer"
  ssh_timeout  = "20m"

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

source "null" "debian-12-hardened" {
  communicator         = "ssh"
  ssh_host             = var.sandbox_host
  ssh_port             = var.sandbox_port
  ssh_username         = var.sandbox_username
  ssh_private_key_file = var.sandbox_private_key_file
  ssh_timeout          = "5m"
}
