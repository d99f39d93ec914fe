<#
.SYNOPSIS
    Configure-ImageMarker.ps1 - record the image's identity in HKLM:\SOFTWARE\imageforge.

.DESCRIPTION
    Values Image, Version, SourceCommit and BuildDate (UTC) say which image definition, version
    and source commit a VM was built from. The first three come from the environment variables
    IMAGEFORGE_IMAGE, IMAGEFORGE_VERSION and IMAGEFORGE_SOURCE_COMMIT, which must be set; the
    Testinfra suite checks them against the image and version under test.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Get-Required([string]$Name, [string]$Pattern) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($value)) {
        throw "Configure-ImageMarker: $Name is not set; Packer must pass it to this script"
    }
    if ($value -notmatch $Pattern) {
        throw "Configure-ImageMarker: $Name='$value' is not valid (expected $Pattern)"
    }
    return $value
}

$values = [ordered]@{
    Image        = Get-Required 'IMAGEFORGE_IMAGE' '^[A-Za-z0-9][A-Za-z0-9._-]*$'
    Version      = Get-Required 'IMAGEFORGE_VERSION' '^\d+\.\d+\.\d+$'
    SourceCommit = Get-Required 'IMAGEFORGE_SOURCE_COMMIT' '^([0-9a-f]{7,40}|unknown)$'
    BuildDate    = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
}

$key = 'HKLM:\SOFTWARE\imageforge'
if (-not (Test-Path -Path $key)) { New-Item -Path $key -Force | Out-Null }
foreach ($name in $values.Keys) {
    Set-ItemProperty -Path $key -Name $name -Type String -Value $values[$name]
}
Write-Output "Configure-ImageMarker: $key records $($values.Image) $($values.Version)"
