# Rendered by imageforge for image debian-12-hardened (plugin profile). Do not edit:
# change images/debian-12-hardened.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.9.0"

  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.2.0"
    }
  }
}
