"""Nothing of the build VM is left in the image: files, histories, the build user, host keys.

A Specialized image keeps its accounts and host keys by definition (Azure provisions nothing
on its VMs): there the build user must have no credential left instead."""

from __future__ import annotations

from decimal import Decimal

import pytest

HISTORY_NAMES = (".bash_history", ".zsh_history", ".sh_history", ".python_history", ".lesshst")


def _find(run_as_root, *args: str) -> list[str]:
    result = run_as_root("find " + " ".join(["%s"] * len(args)), *args)
    return sorted(line for line in result.stdout.splitlines() if line.strip())


def test_no_packer_files_in_temporary_directories(run_as_root):
    found = _find(
        run_as_root,
        "/tmp", "/var/tmp", "-maxdepth", "1",
        "(", "-name", "packer*", "-o", "-name", "script_*.sh", ")",
    )  # fmt: skip
    assert not found, f"Packer left files in the image: {', '.join(found)}"


def test_no_shell_histories(run_as_root):
    names: list[str] = []
    for name in HISTORY_NAMES:
        names += ["-o", "-name", name] if names else ["-name", name]
    found = _find(run_as_root, "/root", "/home", "-maxdepth", "2", "-type", "f", "(", *names, ")")
    assert not found, (
        f"shell histories from the build are in the image (they may hold secrets): "
        f"{', '.join(found)}"
    )


@pytest.mark.generalized
def test_build_user_does_not_exist(host, image_definition, request):
    build_user = image_definition.communicator.username
    admin = request.config.getoption("--imageforge-admin-user")
    if admin == build_user:
        pytest.skip(f"the test VM's admin user is also called {build_user!r}; cannot tell apart")
    assert not host.user(build_user).exists, (
        f"the build user {build_user!r} still exists: the image was not deprovisioned "
        "(generalize.sh / waagent -deprovision+user did not run)"
    )


@pytest.mark.specialized
def test_build_user_has_no_credential_left(host, image_definition, run_as_root, request):
    # A Specialized image keeps its accounts (Azure provisions nothing on its VMs): the build
    # user may stay, but nothing it logged in or became root with may (specialize.sh).
    build_user = image_definition.communicator.username
    admin = request.config.getoption("--imageforge-admin-user")
    if admin == build_user:
        pytest.skip(f"the test VM's admin user is also called {build_user!r}; cannot tell apart")
    user = host.user(build_user)
    if not user.exists:
        return  # gone altogether holds as well
    keys = run_as_root("cat %s/.ssh/authorized_keys", user.home)
    assert not keys.stdout.strip(), (
        f"the build user {build_user!r} still has SSH keys in {user.home}/.ssh/authorized_keys: "
        "whoever holds the build's key can log in to every VM made from this image"
    )
    shadow = run_as_root("getent shadow %s", build_user).stdout.split(":")
    password = shadow[1] if len(shadow) > 1 else ""
    assert password.startswith(("!", "*")), (
        f"the build user {build_user!r} has a usable password: the image carries a credential"
    )
    sudo = run_as_root("sudo -n -l -U %s", build_user)
    assert "may run the following commands" not in sudo.stdout, (
        f"the build user {build_user!r} may still use sudo (its rule outlived the build)"
    )


@pytest.mark.generalized
def test_ssh_host_keys_were_regenerated_after_the_build(host):
    marker = host.file("/etc/imageforge-release")
    key = host.file("/etc/ssh/ssh_host_ed25519_key")
    assert key.exists, "the VM has no ed25519 SSH host key"
    if not marker.exists:
        pytest.fail("no image marker: cannot tell when the image was built", pytrace=False)
    # nanosecond times: a fast build boots its test VM within the second the marker was written
    times = host.check_output(f"stat -c %.9Y {marker.path} {key.path}").split()
    marker_time, key_time = (Decimal(t) for t in times)
    assert key_time > marker_time, (
        "the SSH host keys are older than the image marker: every VM made from this image "
        "would share the build VM's host keys (the image was not deprovisioned)"
    )
