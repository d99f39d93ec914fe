"""The api-versions the emulator serves, per family of routes.

Each family lists the versions the installed SDKs send (azure-mgmt-compute 39: galleries
2026-03-03, virtual machines and managed images 2026-04-01; azure-mgmt-network 33: 2026-03-01;
azure-mgmt-resource 26: 2025-04-01), what other current clients send (GalleryRP's stable
2025-12-03, whose GalleryRP.json matches 2025-03-03's in every part the emulator serves) and a
few earlier stable versions whose shapes the emulator also matches. A request with another
version is refused the way ARM refuses it.
"""

from __future__ import annotations

import re

from imageforge.sandbox.emulator.armerrors import ArmError

API_VERSIONS: dict[str, tuple[str, ...]] = {
    "resources": ("2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-11-01",
                  "2025-04-01"),
    "compute.gallery": ("2022-03-03", "2022-08-03", "2023-07-03", "2024-03-03", "2025-03-03",
                        "2025-12-03", "2026-03-03"),
    "compute.vm": ("2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01",
                   "2024-11-01", "2025-04-01", "2026-04-01"),
    "network": ("2023-09-01", "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01",
                "2024-07-01", "2026-03-01"),
}  # fmt: skip
#: Managed images are served by the same ComputeRP api-versions as virtual machines.
API_VERSIONS["compute.image"] = API_VERSIONS["compute.vm"]
#: Management locks: azure-mgmt-resource-locks 1.0 sends 2020-05-01 (locks.json's newest
#: stable version); the spec's list and get examples are written with 2016-09-01.
API_VERSIONS["authorization"] = ("2016-09-01", "2020-05-01")
#: Role assignments: azure-mgmt-authorization 4.0 sends 2022-04-01 (the newest stable
#: authorization-RoleAssignmentsCalls.json). Subscriptions and tenants (Microsoft.Resources'
#: subscriptions API): 2022-12-01, the newest stable, as imageforge.azure.sharing sends it.
API_VERSIONS["authorization.roles"] = ("2022-04-01",)
API_VERSIONS["subscriptions"] = ("2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01")

#: Families answered like a resource provider (NoRegisteredProviderFound) rather than like
#: ARM's own Microsoft.Resources endpoints (InvalidApiVersionParameter).
_PROVIDER_TYPES = {
    "compute.gallery": "Microsoft.Compute/galleries",
    "compute.vm": "Microsoft.Compute/virtualMachines",
    "compute.image": "Microsoft.Compute/images",
    "network": "Microsoft.Network",
    "authorization": "Microsoft.Authorization/locks",
    "authorization.roles": "Microsoft.Authorization/roleAssignments",
}
_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


def check_api_version(family: str, value: str | None, *, location: str | None = None) -> str:
    """Return ``value`` if the family serves it, else raise ARM's error for it."""
    supported = API_VERSIONS[family]
    listed = ", ".join(f"'{v}'" for v in supported)
    if not value:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if value in supported:
        return value
    if family not in _PROVIDER_TYPES or not _SHAPE.match(value):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{value}' is invalid. The supported versions are {listed}.",
        )
    where = f" for location '{location}'" if location else ""
    raise ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found{where} and API version '{value}' for type "
        f"'{_PROVIDER_TYPES[family]}'. The supported api-versions are {listed}.",
    )
