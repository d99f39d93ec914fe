<#
.SYNOPSIS
    Remove-BuildLeftovers.ps1 - remove what the build left behind, before sysprep.

.DESCRIPTION
    Packer's uploaded scripts and environment files in C:\Windows\Temp, every temporary
    directory, PowerShell command histories of all profiles, the Windows Update download cache,
    superseded components (DISM), unattend files other than sysprep's own, and the event logs.
    Runs last among the provisioners; the builder's sysprep step follows.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function Remove-Quietly([string[]]$Paths) {
    foreach ($path in $Paths) {
        Get-Item -Path $path -Force -ErrorAction SilentlyContinue |
            Remove-Item -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Write-Output 'Remove-BuildLeftovers: temporary files and Packer scripts'
Remove-Quietly @(
    'C:\Windows\Temp\*',
    "$env:TEMP\*",
    'C:\Users\*\AppData\Local\Temp\*'
)

Write-Output 'Remove-BuildLeftovers: PowerShell histories'
Remove-Quietly @('C:\Users\*\AppData\Roaming\Microsoft\Windows\PowerShell\PSReadLine\*_history.txt')

Write-Output 'Remove-BuildLeftovers: unattend files left by the build'
Remove-Quietly @('C:\unattend.xml', 'C:\Windows\Panther\unattend.xml', 'C:\Windows\Panther\Unattend\*')

Write-Output 'Remove-BuildLeftovers: Windows Update cache and superseded components'
Stop-Service -Name wuauserv -Force -ErrorAction SilentlyContinue
Remove-Quietly @('C:\Windows\SoftwareDistribution\Download\*')
Start-Service -Name wuauserv -ErrorAction SilentlyContinue
& Dism.exe /Online /Cleanup-Image /StartComponentCleanup /ResetBase /Quiet
if ($LASTEXITCODE -ne 0) { Write-Warning "Remove-BuildLeftovers: DISM component cleanup exited $LASTEXITCODE" }

Write-Output 'Remove-BuildLeftovers: event logs'
foreach ($log in (& wevtutil.exe el)) {
    & wevtutil.exe cl "$log" 2>$null
}
$global:LASTEXITCODE = 0
Write-Output 'Remove-BuildLeftovers: done'
