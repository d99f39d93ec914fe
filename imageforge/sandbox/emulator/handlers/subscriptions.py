"""The subscriptions and the tenant the sandbox's caller can see: ``GET /subscriptions``,
``GET /subscriptions/{subscriptionId}``, ``GET /tenants`` (Microsoft.Resources' subscriptions
API, stable 2022-12-01, subscriptions.json; GetTenants.json for the tenant's shape).

ARM answers these for the subscriptions and tenants the caller has access to, and nothing
about any other: a subscription of another organization is 404 SubscriptionNotFound, exactly
like one that does not exist. The sandbox's caller has access to the sandbox's subscription and
to every subscription it has a resource group in (the emulator accepts any GUID as a
subscription id), all in one tenant, ``SANDBOX_TENANT_ID``.

A subscription is answered with ``id``, ``subscriptionId``, ``displayName``, ``tenantId`` and
``state`` only (Enabled); the emulator leaves out the policies and other fields it has no use
for. The SubscriptionNotFound message is ARM's usual one, from memory, not from the spec.
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.config import SANDBOX_SUBSCRIPTION_ID
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse

#: The one tenant of the sandbox (a fixed GUID, like the sandbox's subscription id).
SANDBOX_TENANT_ID = "00000000-0000-4000-8000-00000000a11d"
TENANT_NAME = "imageforge sandbox"


def known(em: Emulator) -> list[str]:
    """The subscriptions the caller can see: the sandbox's, then those with resource groups."""
    found = [SANDBOX_SUBSCRIPTION_ID]
    for group in em.store.resources(common.RG_TYPE):
        sub = group.id.split("/")[2].lower()
        if sub not in found:
            found.append(sub)
    return found


def _body(sub: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}",
        "subscriptionId": sub,
        "displayName": "imageforge sandbox"
        if sub == SANDBOX_SUBSCRIPTION_ID
        else f"sandbox subscription {sub[:8]}",
        "tenantId": SANDBOX_TENANT_ID,
        "state": "Enabled",
    }


def require(em: Emulator, subscription: str) -> dict[str, Any]:
    """The subscription as GET answers it, or 404 SubscriptionNotFound."""
    if subscription.lower() not in known(em):
        raise ArmError(
            404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
        )
    return _body(subscription.lower())


def get_subscription(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, require(em, req.subscription))


def list_subscriptions(em: Emulator, req: ArmRequest) -> ArmResponse:
    return common.paginate(em, req, [_body(sub) for sub in known(em)])


def list_tenants(em: Emulator, req: ArmRequest) -> ArmResponse:
    tenant = {
        "id": f"/tenants/{SANDBOX_TENANT_ID}",
        "tenantId": SANDBOX_TENANT_ID,
        "tenantCategory": "Home",
        "countryCode": "US",
        "displayName": TENANT_NAME,
        "domains": ["sandbox.imageforge.invalid"],
        "defaultDomain": "sandbox.imageforge.invalid",
        "tenantType": "AAD",
    }
    return common.paginate(em, req, [tenant])
