"""What a virtual machine's PUT may ask for, checked and resolved as Azure does.

- ``resolve_image``: ``storageProfile.imageReference``, either a sandbox marketplace image
  (publisher/offer/sku/version, resolved by ``find_base_image``; ``latest`` or an exact
  version the marketplace has) or a gallery image version replicated (Completed) to the VM's
  region; an image definition id or ``versions/latest`` picks Azure's "latest" there;
- ``os_profile``: ``osProfile`` (a Linux admin user and SSH keys; secrets are not stored),
  required for a generalized image and refused for a specialized one (``facts["osState"]``:
  a gallery version's definition says it; marketplace images are generalized), whose VMs
  keep the source VM's identity and get no osProfile at all;
- ``nic_ids``: ``networkProfile.networkInterfaces``, NICs of the VM's region no other VM holds;
- ``hardware_profile``: ``hardwareProfile`` (its VM size is checked against the image's
  Hyper-V generation by ``vmsizes``).

Windows cannot run in the sandbox and is refused up front (``WINDOWS_REFUSED``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import BaseImage, OsProfile, find_base_image
from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import marketplace, versions
from imageforge.sandbox.emulator.handlers.network.base import NIC_TYPE

WINDOWS_REFUSED = (
    "Windows cannot run in the sandbox: only Linux images boot there. Test Windows images "
    "against Azure (the Windows path is covered by rendering, packer validate and unit tests)."
)
_WINDOWS_PUBLISHERS = ("microsoftwindowsserver", "microsoftwindowsdesktop", "microsoftsqlserver")
_VERSION_REF = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+"
    r"/images/[^/]+(/versions/[^/]+)?$",
    re.IGNORECASE,
)
_IMAGE_REF = "properties.storageProfile.imageReference"


def resolve_image(
    em: Emulator, reference: Any, location: str
) -> tuple[BaseImage | Path, dict[str, Any], dict[str, Any]]:
    """(what the backend boots, the reference to echo, facts about the OS)."""
    if not isinstance(reference, dict):
        raise invalid_parameter("storageProfile.imageReference is required.", target=_IMAGE_REF)
    ref = copy.deepcopy(reference)
    ref.pop("exactVersion", None)
    image_id = ref.get("id")
    if image_id:
        return _gallery_image(em, str(image_id), location, ref)
    publisher, offer, sku = (str(ref.get(k) or "") for k in ("publisher", "offer", "sku"))
    if not (publisher and offer and sku):
        raise invalid_parameter(
            "imageReference needs an id or publisher, offer, sku and version.", target=_IMAGE_REF
        )
    if publisher.lower() in _WINDOWS_PUBLISHERS:
        raise invalid_parameter(WINDOWS_REFUSED, target=_IMAGE_REF)
    version = str(ref.get("version") or "latest")
    urn = f"{publisher}:{offer}:{sku}:{version}"
    try:
        base = find_base_image(publisher, offer, sku)
    except SandboxError as err:
        raise _platform_image_not_found(urn, str(err)) from None
    exact = marketplace.resolve(em, base, version)
    if exact is None:
        raise _platform_image_not_found(
            urn, "Verify that all fields in the storage profile are correct."
        )
    ref["version"] = version
    ref["exactVersion"] = exact
    facts = {
        "osType": base.os_type,
        "hyperVGeneration": base.hyper_v_generation,
        "osState": "Generalized",
    }
    return base, ref, facts


def _platform_image_not_found(urn: str, detail: str) -> ArmError:
    return ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{urn}' is not available. {detail}",
        target=_IMAGE_REF,
    )


def _gallery_image(
    em: Emulator, image_id: str, location: str, ref: dict[str, Any]
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    if "/providers/microsoft.compute/images/" in image_id.lower():
        raise invalid_parameter(
            "The sandbox cannot boot managed images; use a gallery image version.",
            target=f"{_IMAGE_REF}.id",
        )
    if not _VERSION_REF.match(image_id):
        raise invalid_parameter(
            f"The image reference id '{image_id}' is not a gallery image or image version id.",
            target=f"{_IMAGE_REF}.id",
        )
    definition_id, _, version_name = image_id.partition("/versions/")
    definition = em.store.get(definition_id)
    if definition is None:
        raise ArmError(
            404, "GalleryImageNotFound", f"The gallery image '{definition_id}' was not found."
        )
    if definition.properties.get("osType", "").lower() == "windows":
        raise invalid_parameter(WINDOWS_REFUSED, target=f"{_IMAGE_REF}.id")
    if not version_name or version_name.lower() == "latest":
        version = versions.latest_in_region(em, definition, location)
        if version is None:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"No version of gallery image '{definition.body['name']}' is available as "
                f"latest in region '{location}'.",
            )
    else:
        found = em.store.get(f"{definition_id}/versions/{version_name}")
        if found is None:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"The gallery image version '{image_id}' was not found.",
            )
        version = found
    state = version.internal.get("regions", {}).get(location, {}).get("state")
    if state != "Completed":
        raise ArmError(
            404,
            "GalleryImageNotFound",
            f"The gallery image version '{version.id}' is not available in "
            f"{regions.display_name(location)} region (replication state: {state or 'none'}). "
            "Replicate it to this region, or change the requested region.",
        )
    if not version.internal.get("captured", True):
        raise invalid_parameter(
            f"The gallery image version '{version.id}' was created from a managed image of a "
            "disk, which the sandbox does not hold; it cannot boot.",
            target=f"{_IMAGE_REF}.id",
        )
    ref["exactVersion"] = version.body["name"]
    facts = {
        "osType": definition.properties["osType"],
        "hyperVGeneration": definition.properties.get("hyperVGeneration", "V1"),
        "osState": definition.properties.get("osState", "Generalized"),
        "galleryImageVersionId": version.id,
    }
    return em.blob_dir(location, version.internal["blob"]), ref, facts


def os_profile(
    props: dict[str, Any], vm_name: str, facts: dict[str, Any]
) -> tuple[dict[str, Any] | None, OsProfile | None]:
    """(the osProfile to store, what the backend applies at first boot), or (None, None)
    for an image whose ``facts`` say it is Specialized.

    A specialized image's VM keeps the identity of the VM it was captured from, so Azure
    refuses an osProfile for it (InvalidParameter "Parameter 'osProfile' is not allowed.",
    as Azure/azure-sdk-for-java#11912 and hashicorp/terraform-provider-azurerm#14549 show);
    a generalized image needs one.
    """
    given = props.get("osProfile")
    if str(facts.get("osState", "Generalized")).lower() == "specialized":
        if given is not None:
            raise invalid_parameter("Parameter 'osProfile' is not allowed.", "osProfile")
        return None, None
    if not isinstance(given, dict):
        raise invalid_parameter("Required parameter 'osProfile' is missing (null).", "osProfile")
    if given.get("windowsConfiguration"):
        raise invalid_parameter(WINDOWS_REFUSED, target="osProfile.windowsConfiguration")
    admin = given.get("adminUsername")
    if not isinstance(admin, str) or not admin:
        raise invalid_parameter(
            "Required parameter 'adminUsername' is missing (null).", "osProfile.adminUsername"
        )
    stored = {
        k: copy.deepcopy(v) for k, v in given.items() if k not in ("adminPassword", "customData")
    }
    stored.setdefault("computerName", vm_name)
    stored.setdefault("secrets", [])
    stored.setdefault("allowExtensionOperations", True)
    linux = stored.setdefault("linuxConfiguration", {})
    keys = (linux.get("ssh") or {}).get("publicKeys") or []
    if not isinstance(keys, list):
        raise invalid_parameter("ssh.publicKeys must be a list.", "osProfile.linuxConfiguration")
    key_data = tuple(
        str(k.get("keyData", "")) for k in keys if isinstance(k, dict) and k.get("keyData")
    )
    linux.setdefault("disablePasswordAuthentication", bool(key_data))
    linux.setdefault("provisionVMAgent", True)
    return stored, OsProfile(stored["computerName"], admin, key_data)


def nic_ids(em: Emulator, props: dict[str, Any], location: str, this_vm: str) -> list[str]:
    nics = ((props.get("networkProfile") or {}).get("networkInterfaces")) or []
    if not isinstance(nics, list) or not nics:
        raise invalid_parameter(
            "networkProfile.networkInterfaces must name at least one network interface.",
            target="properties.networkProfile",
        )
    ids = []
    for item in nics:
        nic_id = item.get("id") if isinstance(item, dict) else None
        nic = em.store.get(str(nic_id)) if nic_id else None
        if nic is None or nic.type.lower() != NIC_TYPE.lower():
            raise ArmError(
                404, "NotFound", f"Resource {nic_id} not found.", target="properties.networkProfile"
            )
        if nic.body["location"] != location:
            raise invalid_parameter(
                f"Network interface '{nic.body['name']}' is in '{nic.body['location']}', not in "
                f"the VM's region '{location}'.",
                target="properties.networkProfile",
            )
        attached = nic.internal.get("vm")
        if attached and attached.lower() != this_vm.lower():
            raise ArmError(
                400,
                "NicInUse",
                f"Network interface {nic.id} is in use by virtual machine {attached}.",
            )
        ids.append(nic.id)
    return ids


def hardware_profile(given: Any) -> dict[str, Any]:
    """A given ``hardwareProfile``, which must be an object."""
    if not isinstance(given, dict):
        raise invalid_parameter(
            "hardwareProfile must be an object.", target="properties.hardwareProfile"
        )
    return given
