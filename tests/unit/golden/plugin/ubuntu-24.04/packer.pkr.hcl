# Rendered by imageforge for image ubuntu-24.04 (plugin profile). Do not edit:
# change images/ubuntu-24.04.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.9.0"

  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.2.0"
    }
  }
}
