"""Management locks (Microsoft.Authorization/locks) in the emulator, and their enforcement.

The fidelity tests follow azure-rest-api-specs'
specification/resources/resource-manager/Microsoft.Authorization/stable/2020-05-01/locks.json
and its examples (named on each test), driven raw (to see statuses and bodies) and through
azure-mgmt-resource-locks' ManagementLockClient, the client imageforge uses. Enforcement: a
DELETE inside a locked scope answers 409 ScopeLocked in the words ARM uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.locks import ManagementLockClient
from emulator_helpers import (
    LOCATION,
    SandboxCredential,
    error_of,
    gallery_path,
    make_image,
    make_network,
    managed_image_id,
    rg_path,
    unique,
)

LOCKS_API = "2020-05-01"


@pytest.fixture(scope="module")
def locks(arm) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    client = ManagementLockClient(
        SandboxCredential(),
        arm.subscription_id,
        base_url=arm.base_url,
        connection_verify=str(arm.ca_path),
    )
    yield client.management_locks
    client.close()


def _lock_path(clients, group: str, name: str = "testlock") -> str:  # type: ignore[no-untyped-def]
    return f"{rg_path(clients, group)}/providers/Microsoft.Authorization/locks/{name}"


def _lock(locks, group: str, level: str = "CanNotDelete", name: str = "testlock") -> Any:  # type: ignore[no-untyped-def]
    return locks.create_or_update_at_resource_group_level(
        group, name, {"level": level, "notes": "kept by the tests"}
    )


# fidelity -----------------------------------------------------------------------------------


def test_create_then_update_at_resource_group_level(clients, rg):
    # ManagementLocks_CreateOrUpdateAtResourceGroupLevel.json: 201 when new, 200 when replaced
    path = _lock_path(clients, rg)
    body = {"properties": {"level": "ReadOnly"}}
    created = clients.send("PUT", path, body, **{"api-version": LOCKS_API})
    assert created.status_code == 201
    assert created.json() == {
        "properties": {"level": "ReadOnly"},
        "id": path,
        "type": "Microsoft.Authorization/locks",
        "name": "testlock",
    }
    again = clients.send("PUT", path, body, **{"api-version": LOCKS_API})
    assert again.status_code == 200 and again.json() == created.json()


def test_get_and_list_at_resource_group_and_subscription_level(clients, rg, locks):
    # ManagementLocks_GetAtScope.json (the same object at the group's own path),
    # _ListAtResourceGroupLevel.json and _ListAtSubscriptionLevel.json (api-version 2016-09-01)
    made = _lock(locks, rg)
    assert (made.level, made.notes, made.name) == ("CanNotDelete", "kept by the tests", "testlock")
    got = locks.get_at_resource_group_level(rg, "testlock")
    assert got.id == _lock_path(clients, rg) and got.type == "Microsoft.Authorization/locks"
    listed = clients.send(
        "GET", rg_path(clients, rg) + "/providers/Microsoft.Authorization/locks",
        **{"api-version": "2016-09-01"},
    )  # fmt: skip
    assert listed.status_code == 200
    assert listed.json()["value"] == [
        {
            "properties": {"level": "CanNotDelete", "notes": "kept by the tests"},
            "id": _lock_path(clients, rg),
            "type": "Microsoft.Authorization/locks",
            "name": "testlock",
        }
    ]
    assert [lk.id for lk in locks.list_at_resource_group_level(rg)] == [got.id]
    assert got.id in [lk.id for lk in locks.list_at_subscription_level()]
    assert got.id not in [lk.id for lk in locks.list_at_subscription_level(filter="atScope()")]
    other = unique("rg-")
    clients.resource.resource_groups.create_or_update(other, {"location": LOCATION})
    assert list(locks.list_at_resource_group_level(other)) == []


def test_delete_at_resource_group_level_then_again(clients, rg, locks):
    # ManagementLocks_DeleteAtResourceGroupLevel.json: 200 (deleted) or 204 (no such lock)
    _lock(locks, rg)
    path = _lock_path(clients, rg)
    first = clients.send("DELETE", path, **{"api-version": LOCKS_API})
    assert first.status_code == 200
    second = clients.send("DELETE", path, **{"api-version": LOCKS_API})
    assert second.status_code == 204
    locks.delete_at_resource_group_level(rg, "testlock")  # the SDK takes both
    with pytest.raises(ResourceNotFoundError) as info:
        locks.get_at_resource_group_level(rg, "testlock")
    assert info.value.error.code == "LockNotFound"


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("testlock", {"properties": {}}, "InvalidParameter"),
        ("testlock", {"properties": {"level": "Sealed"}}, "InvalidParameter"),
        ("testlock", {}, "InvalidRequestContent"),
        ("testlock", {"properties": {"level": "ReadOnly", "notes": "n" * 513}}, "InvalidParameter"),
        ("bad:name", {"properties": {"level": "ReadOnly"}}, "InvalidLockName"),
    ],
)
def test_a_lock_the_spec_does_not_allow_is_refused(clients, rg, name, body, code):
    # ManagementLockProperties: level required (NotSpecified, CanNotDelete, ReadOnly), notes at
    # most 512 characters; lockName without <, >, %, &, :, \, ?, /
    answer = clients.send("PUT", _lock_path(clients, rg, name), body, **{"api-version": LOCKS_API})
    assert answer.status_code == 400
    assert error_of(answer)["code"] == code


def test_a_lock_needs_its_resource_group_and_a_served_api_version(clients):
    missing = unique("rg-missing-")
    answer = clients.send(
        "PUT", _lock_path(clients, missing), {"properties": {"level": "ReadOnly"}},
        **{"api-version": LOCKS_API},
    )  # fmt: skip
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "ResourceGroupNotFound"
    wrong = clients.send("GET", _lock_path(clients, missing), **{"api-version": "2099-01-01"})
    assert error_of(wrong)["code"] == "NoRegisteredProviderFound"


# enforcement --------------------------------------------------------------------------------


def _scope_locked(err: HttpResponseError, scope: str, target: str, operation: str) -> None:
    assert err.status_code == 409
    assert err.error.code == "ScopeLocked"
    # the scope named first is the request's path as sent (the SDKs spell resourcegroups both
    # ways); the locked scope is the lock's own
    message = err.error.message
    assert message.lower().startswith(f"the scope '{target.lower()}' ")
    assert message.split("' ", 1)[1] == (
        f"cannot perform {operation} operation because following scope(s) are locked: "
        f"'{scope}'. Please remove the lock and try again."
    )


def test_can_not_delete_refuses_every_delete_in_the_group_and_lets_writes_through(
    clients, rg, locks
):
    make_image(clients, rg)
    image_id = managed_image_id(clients, rg)
    nic = make_network(clients, rg, "vm1")
    _lock(locks, rg)
    scope = rg_path(clients, rg)
    compute, network = clients.compute, clients.network
    deletes = {
        scope: lambda: clients.resource.resource_groups.begin_delete(rg),
        gallery_path(clients, rg): lambda: compute.galleries.begin_delete(rg, "gallery"),
        gallery_path(clients, rg) + "/images/debian-12":
            lambda: compute.gallery_images.begin_delete(rg, "gallery", "debian-12"),
        image_id: lambda: compute.images.begin_delete(rg, image_id.rsplit("/", 1)[1]),
        nic.id: lambda: network.network_interfaces.begin_delete(rg, "vm1-nic"),
    }  # fmt: skip
    for target, delete in deletes.items():
        with pytest.raises(HttpResponseError) as info:
            delete()
        _scope_locked(info.value, scope, target, "delete")
    # CanNotDelete: "able to read and modify the resources, but not delete"
    compute.galleries.begin_update(
        rg, "gallery", {"properties": {"description": "still writable"}}
    ).result()
    assert compute.galleries.get(rg, "gallery").description == "still writable"
    assert clients.resource.resource_groups.get(rg).name == rg
    # a delete of something that is not there is refused too: the scope is locked
    with pytest.raises(HttpResponseError) as info:
        compute.images.begin_delete(rg, "never-made")
    assert info.value.error.code == "ScopeLocked"
    locks.delete_at_resource_group_level(rg, "testlock")
    compute.gallery_images.begin_delete(rg, "gallery", "debian-12").result()
    clients.resource.resource_groups.begin_delete(rg).result()
    assert not clients.resource.resource_groups.check_existence(rg)


def test_read_only_refuses_writes_and_deletes_but_not_lock_changes(clients, rg, locks):
    make_image(clients, rg)
    _lock(locks, rg, "ReadOnly")
    scope = rg_path(clients, rg)
    with pytest.raises(HttpResponseError) as info:
        clients.compute.galleries.begin_update(
            rg, "gallery", {"properties": {"description": "changed"}}
        )
    _scope_locked(info.value, scope, gallery_path(clients, rg), "write")
    with pytest.raises(HttpResponseError) as info:
        clients.compute.galleries.begin_delete(rg, "gallery")
    assert info.value.error.code == "ScopeLocked"
    _lock(locks, rg, "ReadOnly", name="second")  # locks themselves stay manageable
    locks.delete_at_resource_group_level(rg, "testlock")
    locks.delete_at_resource_group_level(rg, "second")
    clients.compute.galleries.begin_update(
        rg, "gallery", {"properties": {"description": "changed"}}
    ).result()


def test_not_specified_blocks_nothing_and_other_groups_are_not_locked(clients, rg, locks):
    make_image(clients, rg)
    _lock(locks, rg, "NotSpecified")
    other = unique("rg-")
    clients.resource.resource_groups.create_or_update(other, {"location": LOCATION})
    clients.resource.resource_groups.begin_delete(other).result()
    clients.compute.gallery_images.begin_delete(rg, "gallery", "debian-12").result()
