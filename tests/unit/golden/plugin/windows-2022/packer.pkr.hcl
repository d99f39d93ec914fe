# Rendered by imageforge for image windows-2022 (plugin profile). Do not edit:
# change images/windows-2022.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.9.0"

  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.2.0"
    }
  }
}
