build {
  name    = "windows-2022"
  sources = ["source.azure-arm.windows-2022"]

  provisioner "powershell" {
    environment_vars = local.provisioner_env
    scripts = [
      "provisioners/windows/Install-WindowsUpdates.ps1",
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
    restart_timeout = "30m"
  }

  # Generalization, always last: sysprep, then wait until Windows reports it is sealed for OOBE.
  provisioner "powershell" {
    inline = [
      "& $env:SystemRoot\\System32\\Sysprep\\Sysprep.exe /generalize /oobe /quit /mode:vm",
      "$deadline = (Get-Date).AddSeconds(1800)",
      "while ($true) { $state = (Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State' -Name ImageState).ImageState; if ($state -eq 'IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE') { Write-Output 'sysprep: image sealed for OOBE'; break }; if ((Get-Date) -gt $deadline) { Write-Error \"sysprep did not reach IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE within 1800 seconds (last ImageState: $state); see C:\\Windows\\System32\\Sysprep\\Panther\\setuperr.log\"; exit 1 }; Write-Output \"sysprep: ImageState is $state, waiting\"; Start-Sleep -Seconds 10 }",
    ]
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
