build {
  name    = "windows-2022"
  sources = ["source.azure-arm.windows-2022"]

  # Windows Update in two passes, elevated as the communicator user: over a plain WinRM session
  # the update agent refuses to download or install (E_ACCESSDENIED). The restart after each pass
  # waits until servicing (TiWorker.exe) has finished; the second pass installs what the first
  # one's reboot made applicable.
  provisioner "powershell" {
    elevated_user     = build.User
    elevated_password = build.Password
    scripts           = ["provisioners/windows/Install-WindowsUpdates.ps1"]
  }

  provisioner "windows-restart" {
    check_registry        = true
    restart_check_command = "powershell -NoProfile -Command \"if ((-not (Get-Process TiWorker -ErrorAction SilentlyContinue)) -and (-not [System.Environment]::HasShutdownStarted)) { Write-Output 'Restart complete' }\""
    restart_timeout       = "30m"
  }

  provisioner "powershell" {
    elevated_user     = build.User
    elevated_password = build.Password
    scripts           = ["provisioners/windows/Install-WindowsUpdates.ps1"]
  }

  provisioner "windows-restart" {
    check_registry        = true
    restart_check_command = "powershell -NoProfile -Command \"if ((-not (Get-Process TiWorker -ErrorAction SilentlyContinue)) -and (-not [System.Environment]::HasShutdownStarted)) { Write-Output 'Restart complete' }\""
    restart_timeout       = "30m"
  }

  provisioner "powershell" {
    environment_vars = local.provisioner_env
    scripts = [
      "provisioners/windows/Install-WindowsFeatures.ps1",
      "provisioners/windows/Configure-WinRM.ps1",
      "provisioners/windows/Configure-Firewall.ps1",
      "provisioners/windows/Configure-RemoteDesktop.ps1",
      "provisioners/windows/Configure-Defender.ps1",
      "provisioners/windows/Configure-ImageMarker.ps1",
      "provisioners/windows/Remove-BuildLeftovers.ps1",
    ]
  }

  provisioner "windows-restart" {
    restart_check_command = "powershell -NoProfile -Command \"if ((-not (Get-Process TiWorker -ErrorAction SilentlyContinue)) -and (-not [System.Environment]::HasShutdownStarted)) { Write-Output 'Restart complete' }\""
    restart_timeout       = "30m"
  }

  # Generalization, always last: Invoke-Sysprep.ps1 waits for servicing and the Azure guest
  # agent, runs sysprep, waits until Windows is sealed for OOBE and then removes the build's
  # WinRM listener and certificate.
  provisioner "powershell" {
    environment_vars = ["IMAGEFORGE_SYSPREP_TIMEOUT=1800"]
    script           = "provisioners/windows/Invoke-Sysprep.ps1"
  }

  post-processor "manifest" {
    output     = "build/windows-2022/manifest.json"
    strip_path = true
    custom_data = {
      image         = "windows-2022"
      version       = var.image_version
      source_commit = var.source_commit
    }
  }
}
