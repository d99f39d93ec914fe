# Rendered by imageforge for image ubuntu-24.04 (builtin profile). Do not edit:
# change images/ubuntu-24.04.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.6.6, < 1.7.0"
}
