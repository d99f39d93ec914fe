<#
.SYNOPSIS
    Configure-WinRM.ps1 - WinRM over HTTPS only: remove every HTTP listener, refuse plain text.

.DESCRIPTION
    Packer talks to the build VM over WinRM on HTTPS (5986), through the listener Azure made
    from the osProfile's certificate; it stays until Invoke-Sysprep.ps1 removes it with its
    certificate after sysprep. No listener is created here: one made in the image would give
    every VM the same private key. Each test VM gets its own listener and certificate at
    deployment. Every HTTP listener is removed, unencrypted traffic and Basic authentication
    are refused, and the firewall allows 5986 and blocks the HTTP WinRM rules.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$listeners = @(Get-ChildItem -Path WSMan:\localhost\Listener)
$https = @($listeners | Where-Object { $_.Keys -contains 'Transport=HTTPS' })
if ($https.Count -eq 0) {
    throw 'Configure-WinRM: no HTTPS listener: Packer should be connected through one'
}
Write-Output 'Configure-WinRM: keeping the build HTTPS listener until Invoke-Sysprep.ps1'

foreach ($listener in $listeners | Where-Object { $_.Keys -contains 'Transport=HTTP' }) {
    Remove-Item -Path "WSMan:\localhost\Listener\$($listener.Name)" -Recurse -Force
    Write-Output "Configure-WinRM: removed HTTP listener $($listener.Name)"
}

Set-Item -Path WSMan:\localhost\Service\AllowUnencrypted -Value $false
Set-Item -Path WSMan:\localhost\Service\Auth\Basic -Value $false
Set-Service -Name WinRM -StartupType Automatic

if (-not (Get-NetFirewallRule -Name 'imageforge-WinRM-HTTPS-In' -ErrorAction SilentlyContinue)) {
    New-NetFirewallRule -Name 'imageforge-WinRM-HTTPS-In' -DisplayName 'WinRM over HTTPS (imageforge)' `
        -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow -Profile Any | Out-Null
}
Get-NetFirewallRule -Name 'WINRM-HTTP-In-TCP*' -ErrorAction SilentlyContinue |
    Disable-NetFirewallRule

$left = @(Get-ChildItem -Path WSMan:\localhost\Listener | Where-Object { $_.Keys -contains 'Transport=HTTP' })
if ($left.Count -gt 0) { throw 'Configure-WinRM: an HTTP listener is still configured' }
Write-Output 'Configure-WinRM: WinRM listens on HTTPS only'
