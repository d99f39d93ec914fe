locals {
  image_name         = "debian-12-hardened"
  gallery_image_name = "debian-12-hardened"
  managed_image_name = "imageforge-debian-12-hardened-${replace(var.image_version, ".", "-")}"

  # Tags on the published version (and on every temporary resource Packer creates).
  version_tags = {
    "imageforge.base-image-version" = var.base_image_version
    "imageforge.image"              = "debian-12-hardened"
    "imageforge.pipeline-run"       = var.pipeline_run
    "imageforge.source-commit"      = var.source_commit
    "imageforge.stage"              = "built"
  }

  # What the provisioner scripts read (image marker, packages, features).
  provisioner_env = [
    "IMAGEFORGE_IMAGE=debian-12-hardened",
    "IMAGEFORGE_VERSION=${var.image_version}",
    "IMAGEFORGE_SOURCE_COMMIT=${var.source_commit}",
    "IMAGEFORGE_PACKAGES=curl jq ca-certificates libpam-pwquality",
  ]
}
