<#
.SYNOPSIS
    Install-WindowsUpdates.ps1 - install every pending software update from Windows Update.

.DESCRIPTION
    Uses the Windows Update Agent API to search, download and install all applicable software
    updates that are not hidden. Drivers are left to Azure. The Windows Update Agent refuses
    downloads from a plain remote WinRM session, so Packer runs this script elevated
    (`elevated_user`), and a `windows-restart` provisioner follows it when a reboot is pending.
    Exits non-zero when an update fails to install.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$session = New-Object -ComObject Microsoft.Update.Session
$session.ClientApplicationID = 'imageforge'
$searcher = $session.CreateUpdateSearcher()
Write-Output 'Install-WindowsUpdates: searching for updates'
$result = $searcher.Search("IsInstalled=0 and Type='Software' and IsHidden=0")

$updates = New-Object -ComObject Microsoft.Update.UpdateColl
foreach ($update in $result.Updates) {
    if (-not $update.EulaAccepted) { $update.AcceptEula() }
    Write-Output "Install-WindowsUpdates: queued $($update.Title)"
    [void]$updates.Add($update)
}
if ($updates.Count -eq 0) {
    Write-Output 'Install-WindowsUpdates: the system is up to date'
    exit 0
}

$downloader = $session.CreateUpdateDownloader()
$downloader.Updates = $updates
[void]$downloader.Download()

$installer = $session.CreateUpdateInstaller()
$installer.Updates = $updates
$installation = $installer.Install()

$failed = @()
for ($i = 0; $i -lt $updates.Count; $i++) {
    # ResultCode 2 = succeeded, 3 = succeeded with errors
    $code = $installation.GetUpdateResult($i).ResultCode
    if ($code -ne 2 -and $code -ne 3) { $failed += $updates.Item($i).Title }
}
if ($failed.Count -gt 0) {
    throw "Install-WindowsUpdates: $($failed.Count) update(s) failed: $($failed -join '; ')"
}
Write-Output "Install-WindowsUpdates: installed $($updates.Count) update(s); reboot required: $($installation.RebootRequired)"
