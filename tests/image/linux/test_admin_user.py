"""The admin user the VM was deployed with exists and can become root."""

from __future__ import annotations

import pytest


@pytest.mark.smoke
def test_admin_user_exists(host, admin_user):
    assert host.user(admin_user).exists, (
        f"the deployed admin user {admin_user!r} does not exist: Azure's provisioning "
        "(waagent / cloud-init) did not create it"
    )


def test_admin_user_has_sudo(run_as_root, admin_user):
    result = run_as_root("sudo -n -l -U %s", admin_user)
    assert result.rc == 0 and "may run the following commands" in result.stdout, (
        f"the admin user {admin_user!r} cannot use sudo: nobody could administer the VM "
        f"({(result.stdout + result.stderr).strip() or 'sudo exited ' + str(result.rc)})"
    )
