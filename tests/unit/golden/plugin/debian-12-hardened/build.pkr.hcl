build {
  name    = "debian-12-hardened"
  sources = ["source.azure-arm.debian-12-hardened", "source.null.debian-12-hardened"]

  provisioner "shell" {
    execute_command  = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E bash '{{ .Path }}'"
    environment_vars = local.provisioner_env
    scripts = [
      "provisioners/linux/install-updates.sh",
      "provisioners/linux/install-packages.sh",
      "provisioners/linux/install-azure-agent.sh",
      "provisioners/linux/configure-ssh-hardening.sh",
      "provisioners/linux/configure-kernel-hardening.sh",
      "provisioners/linux/configure-time-sync.sh",
      "provisioners/linux/configure-security-updates.sh",
      "provisioners/linux/configure-image-marker.sh",
      "provisioners/linux/cleanup-build.sh",
    ]
  }

  # Generalization, always last: generalize.sh runs `waagent -force -deprovision+user`, which
  # deletes the build user and the SSH host keys, then flushes the disks. skip_clean: with the
  # user gone Packer cannot remove its uploaded script (the plugin's docs, "skip_clean").
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E bash '{{ .Path }}'"
    script          = "provisioners/linux/generalize.sh"
    skip_clean      = true
  }

  post-processor "manifest" {
    output     = "build/debian-12-hardened/manifest.json"
    strip_path = true
    custom_data = {
      image         = "debian-12-hardened"
      version       = var.image_version
      source_commit = var.source_commit
    }
  }
}
