<#
.SYNOPSIS
    Invoke-Sysprep.ps1 - generalize Windows for the gallery; always the build's last provisioner.

.DESCRIPTION
    Follows packer-plugin-azure's documented Windows deprovisioning (docs/builders/arm.mdx) and
    actions/runner-images, each wait bounded by IMAGEFORGE_SYSPREP_TIMEOUT seconds (default 1800):

    1. Servicing has finished: no TiWorker.exe (Windows Modules Installer) is running.
    2. The Azure guest agent services (RdAgent, WindowsAzureTelemetryService,
       WindowsAzureGuestAgent, where installed) are running: the agent takes part in sysprep.
    3. %SystemRoot%\System32\Sysprep\unattend.xml is deleted: sysprep would otherwise apply it.
    4. Sysprep.exe /oobe /generalize /quiet /quit /mode:vm, then ImageState must reach
       IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE.
    5. The build's WinRM HTTPS listener and its certificate (private key included) go, so no VM
       made from the image carries the build's key. Packer runs this very script through that
       listener, so it cannot go before sysprep: a one-shot SYSTEM task removes it 15 seconds
       after this script has returned (Packer has its exit code by then and only ARM calls
       follow), and again at the first boot of any VM should the build VM stop first. Test VMs
       get their own listener and certificate at deployment (imageforge.azure.winrmcert). The
       thumbprint is recorded as HKLM:\SOFTWARE\imageforge BuildWinRMThumbprint, so the image
       suite can check that the certificate is gone.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$timeout = 1800
if ("$env:IMAGEFORGE_SYSPREP_TIMEOUT" -match '^\d+$') { $timeout = [int]$env:IMAGEFORGE_SYSPREP_TIMEOUT }
$deadline = (Get-Date).AddSeconds($timeout)

function Wait-Until([string]$What, [scriptblock]$Done) {
    while (-not (& $Done)) {
        if ((Get-Date) -gt $deadline) {
            throw "Invoke-Sysprep: gave up after $timeout seconds waiting for $What"
        }
        Write-Output "Invoke-Sysprep: waiting for $What"
        Start-Sleep -Seconds 10
    }
}

Wait-Until 'servicing (TiWorker.exe) to finish' {
    -not (Get-Process -Name TiWorker -ErrorAction SilentlyContinue)
}
foreach ($service in @(Get-Service -Name 'RdAgent', 'WindowsAzureTelemetryService', 'WindowsAzureGuestAgent' -ErrorAction SilentlyContinue)) {
    $name = $service.Name
    Wait-Until "service $name to run" { (Get-Service -Name $name).Status -eq 'Running' }
}

$unattend = Join-Path $env:SystemRoot 'System32\Sysprep\unattend.xml'
if (Test-Path -Path $unattend) {
    Remove-Item -Path $unattend -Force
    Write-Output "Invoke-Sysprep: removed $unattend"
}

$https = @(Get-ChildItem -Path WSMan:\localhost\Listener |
    Where-Object { $_.Keys -contains 'Transport=HTTPS' })
$thumbprints = @($https | ForEach-Object {
    (Get-ChildItem -Path "WSMan:\localhost\Listener\$($_.Name)" |
        Where-Object { $_.Name -eq 'CertificateThumbprint' }).Value
} | Where-Object { $_ })

& (Join-Path $env:SystemRoot 'System32\Sysprep\Sysprep.exe') /oobe /generalize /quiet /quit /mode:vm
$state = ''
Wait-Until 'ImageState IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE (see C:\Windows\System32\Sysprep\Panther\setuperr.log)' {
    $script:state = (Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State').ImageState
    $script:state -eq 'IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE'
}
Write-Output 'Invoke-Sysprep: image sealed for OOBE'

if ($thumbprints.Count -gt 0) {
    $key = 'HKLM:\SOFTWARE\imageforge'
    if (-not (Test-Path -Path $key)) { New-Item -Path $key -Force | Out-Null }
    Set-ItemProperty -Path $key -Name BuildWinRMThumbprint -Type String -Value ($thumbprints -join ',')
    $dir = Join-Path $env:ProgramData 'imageforge'
    New-Item -Path $dir -ItemType Directory -Force | Out-Null
    $removal = Join-Path $dir 'Remove-BuildWinRM.ps1'
    $list = ($thumbprints | ForEach-Object { "'$_'" }) -join ', '
    Set-Content -Path $removal -Encoding UTF8 -Value @"
`$ErrorActionPreference = 'Continue'
foreach (`$thumbprint in @($list)) {
    Get-ChildItem -Path WSMan:\localhost\Listener | Where-Object { `$_.Keys -contains 'Transport=HTTPS' } | ForEach-Object {
        `$path = "WSMan:\localhost\Listener\`$(`$_.Name)"
        if ((Get-ChildItem -Path `$path | Where-Object { `$_.Name -eq 'CertificateThumbprint' }).Value -eq `$thumbprint) {
            Remove-Item -Path `$path -Recurse -Force
        }
    }
    Get-ChildItem -Path Cert:\LocalMachine\My | Where-Object { `$_.Thumbprint -eq `$thumbprint } |
        Remove-Item -DeleteKey -Force
}
Unregister-ScheduledTask -TaskName 'imageforge-remove-build-winrm' -Confirm:`$false
Remove-Item -Path '$removal' -Force
"@
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' `
        -Argument "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File `"$removal`""
    $triggers = @(
        (New-ScheduledTaskTrigger -Once -At (Get-Date).AddSeconds(15)),
        (New-ScheduledTaskTrigger -AtStartup)
    )
    Register-ScheduledTask -TaskName 'imageforge-remove-build-winrm' -Action $action `
        -Trigger $triggers -User 'SYSTEM' -RunLevel Highest -Force | Out-Null
    Write-Output "Invoke-Sysprep: the build's WinRM listener and certificate go in 15 seconds"
}
