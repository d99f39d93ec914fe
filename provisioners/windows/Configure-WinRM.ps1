<#
.SYNOPSIS
    Configure-WinRM.ps1 - WinRM over HTTPS only: keep or create the HTTPS listener, remove HTTP.

.DESCRIPTION
    Packer and the Testinfra suite talk to the VM over WinRM on HTTPS (5986). An existing HTTPS
    listener (Azure creates one from the osProfile's certificate) is kept; otherwise one is
    created with a self-signed certificate for the computer name. Every HTTP listener is
    removed, unencrypted traffic and Basic authentication are refused, and the firewall allows
    5986 and blocks the HTTP WinRM rules.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$listeners = @(Get-ChildItem -Path WSMan:\localhost\Listener)
$https = @($listeners | Where-Object { $_.Keys -contains 'Transport=HTTPS' })
if ($https.Count -eq 0) {
    $cert = New-SelfSignedCertificate -DnsName $env:COMPUTERNAME `
        -CertStoreLocation Cert:\LocalMachine\My -KeyExportPolicy NonExportable `
        -NotAfter (Get-Date).AddYears(2)
    New-Item -Path WSMan:\localhost\Listener -Transport HTTPS -Address * `
        -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null
    Write-Output "Configure-WinRM: created an HTTPS listener (certificate $($cert.Thumbprint))"
} else {
    Write-Output 'Configure-WinRM: keeping the existing HTTPS listener'
}

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
