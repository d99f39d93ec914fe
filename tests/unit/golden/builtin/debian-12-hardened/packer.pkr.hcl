# Rendered by imageforge for image debian-12-hardened (builtin profile). Do not edit:
# change images/debian-12-hardened.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.6.6, < 1.7.0"
}
