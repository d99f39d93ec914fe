<#
.SYNOPSIS
    Install-WindowsFeatures.ps1 - install the image's Windows features (IMAGEFORGE_FEATURES).

.DESCRIPTION
    IMAGEFORGE_FEATURES holds Windows feature names (as Get-WindowsFeature shows them), separated
    by spaces or commas; it may be empty. Each is installed with its management tools and
    checked afterwards. A `windows-restart` provisioner follows when a feature needs a reboot.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$features = @("$env:IMAGEFORGE_FEATURES" -split '[\s,]+' | Where-Object { $_ })
if ($features.Count -eq 0) {
    Write-Output 'Install-WindowsFeatures: IMAGEFORGE_FEATURES is empty: nothing to install'
    exit 0
}
foreach ($name in $features) {
    if ($name -notmatch '^[A-Za-z0-9][A-Za-z0-9._-]*$') {
        throw "Install-WindowsFeatures: '$name' in IMAGEFORGE_FEATURES is not a feature name"
    }
}

$result = Install-WindowsFeature -Name $features -IncludeManagementTools
if (-not $result.Success) {
    throw "Install-WindowsFeatures: installation failed (exit code $($result.ExitCode))"
}
$missing = @(Get-WindowsFeature -Name $features | Where-Object { -not $_.Installed } |
    ForEach-Object Name)
if ($missing.Count -gt 0) {
    throw "Install-WindowsFeatures: not installed afterwards: $($missing -join ', ')"
}
Write-Output "Install-WindowsFeatures: installed $($features -join ', '); restart needed: $($result.RestartNeeded)"
