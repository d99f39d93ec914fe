<#
.SYNOPSIS
    Remove-BuildLeftovers.ps1 - remove what the build left behind, before sysprep.

.DESCRIPTION
    Packer's uploaded scripts and environment files in C:\Windows\Temp, every temporary
    directory, PowerShell command histories of all profiles, the Windows Update download cache,
    superseded components (DISM), unattend files other than sysprep's own (Invoke-Sysprep.ps1
    removes that one), and the event logs that can be cleared.
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

# Event logs: only the channels that can be cleared. Analytic and Debug channels refuse
# `wevtutil cl` (and clearing them would mean disabling them first), so they are skipped by type.
# The native command's exit code is checked, not its stderr: under ErrorActionPreference 'Stop',
# Windows PowerShell 5.1 turns a native command's redirected stderr line into a terminating error.
Write-Output 'Remove-BuildLeftovers: event logs'
$cleared = 0
$failed = @()
$logs = @(Get-WinEvent -ListLog * -ErrorAction SilentlyContinue |
    Where-Object { $_.LogType -in @('Administrative', 'Operational') -and $_.RecordCount -gt 0 })
foreach ($log in $logs) {
    $ErrorActionPreference = 'Continue'
    $null = & wevtutil.exe cl "$($log.LogName)" 2>&1
    $code = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ($code -eq 0) { $cleared++ } else { $failed += "$($log.LogName) (exit $code)" }
}
if ($failed.Count -gt 0) {
    Write-Warning "Remove-BuildLeftovers: could not clear $($failed.Count) log(s): $($failed -join ', ')"
}
$global:LASTEXITCODE = 0
Write-Output "Remove-BuildLeftovers: cleared $cleared event log(s); done"
