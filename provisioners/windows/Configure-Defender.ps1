<#
.SYNOPSIS
    Configure-Defender.ps1 - Microsoft Defender Antivirus on, with real-time and cloud protection.

.DESCRIPTION
    Real-time, behaviour and script scanning on, cloud-delivered protection and safe sample
    submission, potentially unwanted applications blocked, the service starting automatically,
    and current signatures in the image (a failed signature update is a warning only: the VM
    updates them itself after deployment). Fails if real-time protection is not on afterwards.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

Set-Service -Name WinDefend -StartupType Automatic
Set-MpPreference -DisableRealtimeMonitoring $false -DisableBehaviorMonitoring $false `
    -DisableScriptScanning $false -DisableIOAVProtection $false `
    -MAPSReporting Advanced -SubmitSamplesConsent SendSafeSamples -PUAProtection Enabled

try {
    Update-MpSignature -UpdateSource MicrosoftUpdateServer
    Write-Output 'Configure-Defender: signatures updated'
} catch {
    Write-Warning "Configure-Defender: signature update failed ($($_.Exception.Message)); the VM updates them after deployment"
}

$status = Get-MpComputerStatus
if (-not $status.RealTimeProtectionEnabled) {
    throw 'Configure-Defender: real-time protection is not enabled'
}
Write-Output "Configure-Defender: real-time protection on, signatures $($status.AntivirusSignatureVersion)"
