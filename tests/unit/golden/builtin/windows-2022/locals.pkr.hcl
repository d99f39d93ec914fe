locals {
  image_name         = "windows-2022"
  gallery_image_name = "windows-2022"
  managed_image_name = "imageforge-windows-2022-${replace(var.image_version, ".", "-")}"

  # Tags on the published version (and on every temporary resource Packer creates).
  version_tags = {
    "imageforge.base-image-version" = var.base_image_version
    "imageforge.image"              = "windows-2022"
    "imageforge.pipeline-run"       = var.pipeline_run
    "imageforge.source-commit"      = var.source_commit
    "imageforge.stage"              = "built"
  }

  # What the provisioner scripts read (image marker, packages, features).
  provisioner_env = [
    "IMAGEFORGE_IMAGE=windows-2022",
    "IMAGEFORGE_VERSION=${var.image_version}",
    "IMAGEFORGE_SOURCE_COMMIT=${var.source_commit}",
    "IMAGEFORGE_FEATURES=Web-Server",
  ]
}
