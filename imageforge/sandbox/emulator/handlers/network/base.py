"""What the top-level Microsoft.Network resource types share.

A ``NetworkType`` names one type (virtual networks, NSGs, public IPs, NICs) and what sets it
apart: how a PUT fills its properties, what refuses its DELETE while it is in use, what GET adds
to the stored body and what deleting it leaves to tidy. From that it serves the type's PUT
(group and location checks, a fresh resourceGuid and etag, an LRO), GET, list and DELETE.
Resources point at each other by ``{"id": ...}`` references; the emulator keeps the way back
(a public IP's NIC, a NIC's VM and endpoint) in each resource's ``internal`` bookkeeping.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.routing import Crud
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Network"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
#: Read-only on input: ignored wherever a client sends them back.
READONLY = ("provisioningState", "resourceGuid", "etag")

#: ``build(em, req, res, props)``: set ``res``'s properties from the request's ``props``.
Build = Callable[[Emulator, ArmRequest, Resource, dict[str, Any]], None]
#: ``check(em, res)``: raise what ARM answers, or tidy up, for a stored resource.
Check = Callable[[Emulator, Resource], None]
Render = Callable[[Emulator, Resource], dict[str, Any]]


def etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def invalid_reference(ref_id: Any, owner: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {ref_id} referenced by resource {owner} was not found. Please make sure "
        "that the referenced resource exists, and that both resources are in the same region.",
    )


def reference(em: Emulator, ref: Any, type_name: str, owner: str) -> Resource:
    """The resource a ``{"id": ...}`` reference names, or ARM's InvalidResourceReference."""
    ref_id = ref.get("id") if isinstance(ref, dict) else None
    found = em.store.get(str(ref_id)) if ref_id else None
    if found is None or found.type.lower() != type_name.lower():
        raise invalid_reference(ref_id, owner)
    return found


def set_internal(em: Emulator, rid: str, **values: Any) -> None:
    """Set (or, for None, drop) bookkeeping fields of a stored resource, if it still exists."""
    with em.store.lock:
        found = em.store.get(rid)
        if found is None:
            return
        for key, value in values.items():
            if value is None:
                found.internal.pop(key, None)
            else:
                found.internal[key] = value
        em.store.put(found)


def as_stored(_em: Emulator, res: Resource) -> dict[str, Any]:
    """A copy of the stored body (with its ``properties``), for the types GET adds nothing to."""
    body = copy.deepcopy(res.body)
    body.setdefault("properties", {})
    return body


def nothing(_em: Emulator, _res: Resource) -> None:
    return None


@dataclass(frozen=True)
class NetworkType:
    """One top-level Microsoft.Network type and its PUT, GET, list and DELETE handlers."""

    type_name: str
    #: The id segment of the type's collection (``virtualNetworks``).
    collection: str
    #: The route parameter that names one (``virtualNetworkName``).
    param: str
    build: Build
    #: Refuses a DELETE while other resources still use the resource.
    in_use: Check = nothing
    render: Render = as_stored
    #: What deleting the resource leaves to tidy (back-references others hold).
    cleanup: Check = nothing

    @property
    def crud(self) -> Crud:
        """The handlers of the type's routes."""
        return Crud(self.list_all, self.put, self.get, self.delete)

    def resource_id(self, req: ArmRequest) -> str:
        return common.provider_id(
            req.subscription,
            req.param("resourceGroupName"),
            PROVIDER,
            self.collection,
            req.param(self.param),
        )

    def put(self, em: Emulator, req: ArmRequest) -> ArmResponse:
        """Group and location checks, then ``build`` fills the properties; an LRO answers."""
        body = common.body_object(req)
        with em.store.lock:
            group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
            location = common.location_of(body, self.type_name)
            rid = self.resource_id(req)
            existing = em.store.get(rid)
            props = common.drop(common.properties_of(body), *READONLY)
            if existing is not None:
                common.same_location(existing, location, self.type_name)
                common.reject_if_busy(existing, f"{self.type_name} '{existing.body['name']}'")
                res = existing
                res.body["tags"] = common.tags_of(body)
            else:
                # the id as the group is spelled when it was created
                name = req.param(self.param)
                rid = common.provider_id(
                    req.subscription, group.body["name"], PROVIDER, self.collection, name
                )
                tags = common.tags_of(body)
                res = Resource(
                    rid, self.type_name, common.base_body(rid, self.type_name, location, tags)
                )
                res.properties["resourceGuid"] = str(uuid.uuid4())
            self.build(em, req, res, props)
            res.body["etag"] = etag()
            shown = functools.partial(self.render, em)
            return common.put_with_operation(
                em, req, res, common.NETWORK, created=existing is None, render=shown
            )

    def get(self, em: Emulator, req: ArmRequest) -> ArmResponse:
        group = req.param("resourceGroupName")
        res = common.require(em, self.resource_id(req), self.type_name, group)
        return ArmResponse(200, self.render(em, res))

    def list_all(self, em: Emulator, req: ArmRequest) -> ArmResponse:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        found = em.store.resources(self.type_name, group.id)
        return common.paginate(em, req, [self.render(em, r) for r in found])

    def delete(self, em: Emulator, req: ArmRequest) -> ArmResponse:
        return common.delete_resource(
            em,
            req,
            self.resource_id(req),
            self.type_name,
            common.NETWORK,
            refuse=self.in_use,
            cleanup=self.cleanup,
        )
