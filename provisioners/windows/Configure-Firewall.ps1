<#
.SYNOPSIS
    Configure-Firewall.ps1 - turn Windows Firewall on for every profile, block inbound by default.

.DESCRIPTION
    Domain, Private and Public profiles are enabled with inbound traffic blocked unless a rule
    allows it (RDP and WinRM over HTTPS have their own rules) and outbound allowed. Dropped
    packets are logged so a blocked service can be diagnosed on a VM.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Set-NetFirewallProfile -Profile 'Domain', 'Private', 'Public' -Enabled True `
    -DefaultInboundAction Block -DefaultOutboundAction Allow -AllowInboundRules True `
    -LogBlocked True -LogMaxSizeKilobytes 16384

$off = @(Get-NetFirewallProfile | Where-Object { -not $_.Enabled })
if ($off.Count -gt 0) {
    throw "Configure-Firewall: profile(s) still off: $(($off | ForEach-Object Name) -join ', ')"
}
Write-Output 'Configure-Firewall: Domain, Private and Public profiles are on'
