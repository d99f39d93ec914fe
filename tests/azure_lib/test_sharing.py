"""Sharing the gallery (imageforge.azure.sharing, imageforge.pipeline.sharing) against the
emulator: subscriptions and tenants on its sharing profile, Reader role assignments on it,
what `invoke versions` says about them, and every refused input changing nothing."""

from __future__ import annotations

import pytest
from azure_helpers import new_session, publish, requests_since

from imageforge.azure import ids, sharing
from imageforge.errors import ConfigError, NotFoundError
from imageforge.pipeline import release
from imageforge.pipeline.sharing import share_task
from imageforge.sandbox.emulator.handlers.subscriptions import SANDBOX_TENANT_ID

SUB_A = "34a4ab42-0d72-47d9-bd1a-aed207386dac"
SUB_B = "380FD389-260B-41AA-BAD9-0A83108C370B"  # given upper-case, kept lower-case
TENANT = "c24c76aa-8897-4027-9b03-8f7928b54ff6"
PRINCIPAL = "ce2ce14e-85d7-4629-bdbc-454d0519d987"
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def _share(session, **flags):  # type: ignore[no-untyped-def]
    share_task(session.site, session=session, **flags)


def test_shared_gallery_listed_by_library_and_versions_then_removed(session, defined, capsys):
    publish(session, defined, "1.0.0")
    assert sharing.read_sharing(session) == sharing.Sharing("Private")
    _share(session, add_subscriptions=[SUB_A, SUB_B], add_tenants=[TENANT])
    assert sharing.read_sharing(session) == sharing.Sharing(
        "Groups", (SUB_A, SUB_B.lower()), (TENANT,)
    )
    out = capsys.readouterr().out
    assert "sharingProfile.permissions set to Groups" in out
    shared = f"shared with: subscriptions {SUB_A}, {SUB_B.lower()}; tenants {TENANT}"
    assert shared in out

    release.versions_task(session.site, defined, target=None, session=session)
    out = capsys.readouterr().out
    assert "1.0.0" in out
    assert f"gallery gallery (resource group {session.site.resource_group}) {shared}" in out

    _share(session, remove_subscriptions=[SUB_A])
    assert sharing.read_sharing(session).subscriptions == (SUB_B.lower(),)
    assert sharing.read_sharing(session).tenants == (TENANT,)
    _share(session, remove_tenants=[TENANT], add_subscriptions=[SUB_A])
    assert sharing.read_sharing(session) == sharing.Sharing("Groups", (SUB_B.lower(), SUB_A))
    capsys.readouterr()

    _share(session, reset=True, add_tenants=[TENANT])  # shared with exactly this tenant
    assert sharing.read_sharing(session) == sharing.Sharing("Groups", (), (TENANT,))
    _share(session, reset=True)
    assert sharing.read_sharing(session) == sharing.Sharing("Groups")
    release.versions_task(session.site, defined, target=None, session=session)
    assert "shared with: no subscription or tenant" in capsys.readouterr().out


def test_adding_again_sends_no_share(arm, session, defined):
    _share(session, add_subscriptions=[SUB_A])
    arm.reset_stats()
    _share(session, add_subscriptions=[SUB_A])
    posts = [e for e in requests_since(arm) if e["method"] in WRITES]
    assert posts == [], posts
    assert sharing.read_sharing(session).subscriptions == (SUB_A,)


def test_reader_role_assignment_at_the_gallery(session, defined, capsys):
    _share(session, readers=[PRINCIPAL.upper()])
    assert "granted" in capsys.readouterr().out
    scope = ids.gallery_id(session)
    found = list(
        session.authorization.role_assignments.list_for_scope(scope.lstrip("/"), filter="atScope()")
    )
    assert len(found) == 1
    assignment = found[0]
    assert assignment.principal_id == PRINCIPAL
    assert assignment.role_definition_id.endswith(
        "/providers/Microsoft.Authorization/roleDefinitions/" + sharing.READER_ROLE_ID
    )
    assert assignment.scope.lower() == scope.lower()
    # the library reads it back; granting again makes no second one
    assert [r.name for r in sharing.readers(session)] == [assignment.name]
    _share(session, readers=[PRINCIPAL])
    assert "already had it" in capsys.readouterr().out
    again = session.authorization.role_assignments.list_for_scope(scope.lstrip("/"))
    assert [a.name for a in again] == [assignment.name]
    # the Reader assignment does not share the gallery with a subscription or tenant
    assert not sharing.read_sharing(session).shared


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "nothing to do: give --add-subscription"),
        ({"add_subscriptions": ["nope"]}, "--add-subscription 'nope' is not a GUID"),
        ({"add_tenants": [SUB_A + "x"]}, f"--add-tenant '{SUB_A}x' is not a GUID"),
        ({"readers": ["someone@example.com"]}, "--reader 'someone@example.com' is not a GUID"),
        (
            {"add_subscriptions": [SUB_A], "remove_subscriptions": [SUB_A.upper()]},
            f"--add-subscription and --remove-subscription both name {SUB_A}",
        ),
        (
            {"add_subscriptions": [SUB_A], "add_tenants": [SUB_A]},
            f"{SUB_A} is given as a subscription and as a tenant",
        ),
        (
            {"reset": True, "remove_tenants": [TENANT]},
            "--reset removes every subscription and tenant: drop --remove-*",
        ),
        (
            {"add_subscriptions": [SUB_A, SANDBOX_TENANT_ID]},
            f"--add-subscription {SANDBOX_TENANT_ID} is a tenant id (the tenant of subscription ",
        ),
        (
            {"remove_subscriptions": [SANDBOX_TENANT_ID]},
            "not a subscription: use --remove-tenant",
        ),
        ({"add_tenants": ["SUB"]}, "is a subscription (imageforge sandbox), not a tenant: "),
        ({"remove_subscriptions": [SUB_A]}, f"--remove-subscription {SUB_A}: gallery gallery "),
        ({"remove_tenants": [TENANT]}, "is not shared with it"),
    ],
    ids=[
        "nothing", "subscription-not-guid", "tenant-not-guid", "reader-not-guid",
        "add-and-remove", "subscription-and-tenant", "reset-and-remove",
        "tenant-as-subscription", "tenant-as-removed-subscription", "subscription-as-tenant",
        "remove-not-shared", "remove-tenant-not-shared",
    ],
)  # fmt: skip
def test_refused_input_changes_nothing(arm, session, defined, flags, message):
    flags = {
        k: [arm.subscription_id if v == "SUB" else v for v in vs] if isinstance(vs, list) else vs
        for k, vs in flags.items()
    }
    _share(session, add_subscriptions=[SUB_B])
    before = sharing.read_sharing(session)
    arm.reset_stats()
    with pytest.raises(ConfigError) as caught:
        _share(session, **flags)
    text = str(caught.value)
    assert "\n" not in text
    assert message in text, text
    writes = [e for e in requests_since(arm) if e["method"] in WRITES]
    assert writes == [], writes
    assert sharing.read_sharing(session) == before


def test_sharing_a_gallery_that_does_not_exist(arm):
    with new_session(arm) as fresh:
        arm.reset_stats()
        with pytest.raises(NotFoundError) as caught:
            _share(fresh, add_subscriptions=[SUB_A], readers=[PRINCIPAL])
        assert str(caught.value) == (
            f"gallery gallery (resource group {fresh.site.resource_group}) does not exist in "
            f"{fresh.where}: there is nothing to share yet; build an image first (invoke build)"
        )
        assert [e for e in requests_since(arm) if e["method"] in WRITES] == []
