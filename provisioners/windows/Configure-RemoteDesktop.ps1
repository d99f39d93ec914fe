<#
.SYNOPSIS
    Configure-RemoteDesktop.ps1 - allow Remote Desktop with Network Level Authentication only.

.DESCRIPTION
    RDP is enabled, requires Network Level Authentication (UserAuthentication = 1), TLS for the
    connection (SecurityLayer = 2) and high encryption, and the built-in Remote Desktop firewall
    rules are enabled. The rule group is addressed by its resource id so the script works on
    every display language.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$server = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server'
$rdpTcp = "$server\WinStations\RDP-Tcp"
Set-ItemProperty -Path $server -Name fDenyTSConnections -Type DWord -Value 0
Set-ItemProperty -Path $rdpTcp -Name UserAuthentication -Type DWord -Value 1
Set-ItemProperty -Path $rdpTcp -Name SecurityLayer -Type DWord -Value 2
Set-ItemProperty -Path $rdpTcp -Name MinEncryptionLevel -Type DWord -Value 3
Enable-NetFirewallRule -Group '@FirewallAPI.dll,-28752'

if ((Get-ItemProperty -Path $rdpTcp).UserAuthentication -ne 1) {
    throw 'Configure-RemoteDesktop: Network Level Authentication is not required'
}
Write-Output 'Configure-RemoteDesktop: RDP enabled, Network Level Authentication required'
