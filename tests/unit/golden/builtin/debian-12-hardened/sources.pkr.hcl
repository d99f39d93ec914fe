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
  azure_tags      = local.version_tags


  communicator = "ssh"
  ssh_username = "packer"
  ssh_timeout  = "20m"

  # Packer < 1.7 publishes to a gallery only through a managed image; imageforge deletes it
  # after the version is published.
  managed_image_name                 = local.managed_image_name
  managed_image_resource_group_name  = "rg-imageforge"
  managed_image_storage_account_type = "Standard_LRS"

  # Publish to the build region only, excluded from latest: replication and promotion are
  # separate, later steps (invoke replicate, invoke promote).
  shared_gallery_image_version_exclude_from_latest = true
  shared_image_gallery_replica_count               = 1
  shared_image_gallery_timeout                     = "2h"

  shared_image_gallery_destination {
    subscription        = var.subscription_id
    resource_group      = "rg-imageforge"
    gallery_name        = "imageforge"
    image_name          = local.gallery_image_name
    image_version       = var.image_version
    replication_regions = ["westeurope"]
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
