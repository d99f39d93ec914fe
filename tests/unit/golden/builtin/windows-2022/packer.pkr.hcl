# Rendered by imageforge for image windows-2022 (builtin profile). Do not edit:
# change images/windows-2022.pkrvars.hcl, templates/ or builders/ and render again.
packer {
  required_version = ">= 1.6.6, < 1.7.0"
}
