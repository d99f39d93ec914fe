"""What a gallery image version may look like: its name, publishing profile and updates.

Pure functions over JSON: they normalize a request's ``properties`` the way Azure fills in
defaults, and raise the ArmError Azure answers for a bad name, bad or duplicate regions, a
target region list that leaves out the version's own (source) region, replica counts outside
1..100, and changes to what cannot change after creation.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import (
    ArmError,
    invalid_parameter,
    property_change_not_allowed,
)

INT32_MAX = 2**31 - 1
MAX_REPLICAS = 100
STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_PP = "galleryImageVersion.properties.publishingProfile"
#: Read-only on input: ignored wherever a client sends them back.
_READONLY = ("provisioningState", "replicationStatus")
_PP_READONLY = ("publishedDate",)
#: What PATCH (and PUT of an existing version) may change.
UPDATABLE_PUBLISHING = ("targetRegions", "replicaCount", "excludeFromLatest", "endOfLifeDate")
UPDATABLE_SAFETY = ("allowDeletionOfReplicatedLocations",)


def parse_name(name: str) -> tuple[int, int, int]:
    """Major.Minor.Patch with int32 parts, or 400 InvalidParameter."""
    match = _NAME.match(name)
    if not match or any(int(part) > INT32_MAX for part in match.groups()):
        raise invalid_parameter(
            f"The gallery image version name '{name}' is invalid. It must follow the pattern "
            "Major(int32).Minor(int32).Patch(int32), for example 1.0.0.",
            target="galleryImageVersionName",
        )
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def clean_input(props: dict[str, Any]) -> dict[str, Any]:
    """A copy of request properties without the read-only fields."""
    out = copy.deepcopy(props)
    for key in _READONLY:
        out.pop(key, None)
    publishing = out.get("publishingProfile")
    if isinstance(publishing, dict):
        for key in _PP_READONLY:
            publishing.pop(key, None)
    safety = out.get("safetyProfile")
    if isinstance(safety, dict):
        safety.pop("reportedForPolicyViolation", None)
        safety.pop("policyViolations", None)
    storage = out.get("storageProfile")
    if isinstance(storage, dict):
        disk = storage.get("osDiskImage")
        if isinstance(disk, dict):
            disk.pop("sizeInGB", None)
        for disk in storage.get("dataDiskImages") or []:
            if isinstance(disk, dict):
                disk.pop("sizeInGB", None)
    return out


def _replicas(value: Any, target: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPLICAS:
        raise invalid_parameter(
            f"The replica count '{value}' is invalid: it must be between 1 and {MAX_REPLICAS}.",
            target=target,
        )
    return value


def _storage_type(value: Any, target: str) -> str:
    if value not in STORAGE_TYPES:
        raise invalid_parameter(
            f"The storage account type '{value}' is invalid: use one of "
            f"{', '.join(STORAGE_TYPES)}.",
            target=target,
        )
    return str(value)


def _bool(value: Any, target: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_parameter(f"'{value}' is not a boolean.", target=target)
    return value


def _date(value: Any, target: str) -> str:
    try:
        dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise invalid_parameter(f"'{value}' is not a valid date-time.", target=target) from None
    return str(value)


def normalize_publishing(publishing: Any, source_region: str) -> dict[str, Any]:
    """Fill in Azure's defaults and validate a publishingProfile (not publishedDate)."""
    if publishing is None:
        publishing = {}
    if not isinstance(publishing, dict):
        raise invalid_parameter("publishingProfile must be an object.", target=_PP)
    out = copy.deepcopy(publishing)
    out["replicaCount"] = _replicas(out.get("replicaCount", 1), f"{_PP}.replicaCount")
    out["storageAccountType"] = _storage_type(
        out.get("storageAccountType", "Standard_LRS"), f"{_PP}.storageAccountType"
    )
    out["excludeFromLatest"] = _bool(
        out.get("excludeFromLatest", False), f"{_PP}.excludeFromLatest"
    )
    if out.get("endOfLifeDate") is not None:
        out["endOfLifeDate"] = _date(out["endOfLifeDate"], f"{_PP}.endOfLifeDate")
    targets = out.get("targetRegions")
    if targets is None:
        targets = [{"name": source_region}]
    if not isinstance(targets, list) or not targets:
        raise invalid_parameter(
            "targetRegions must be a non-empty list.", target=f"{_PP}.targetRegions"
        )
    seen: set[str] = set()
    normalized = []
    for index, target in enumerate(targets):
        where = f"{_PP}.targetRegions[{index}]"
        if not isinstance(target, dict) or not isinstance(target.get("name"), str):
            raise invalid_parameter("each target region needs a name.", target=where)
        name = target["name"]
        if not regions.is_region(name):
            raise invalid_parameter(
                f"The target region '{name}' is not a valid Azure region.", target=f"{where}.name"
            )
        short = regions.normalize(name)
        if short in seen:
            raise invalid_parameter(
                f"The target region '{name}' is listed more than once.", target=f"{where}.name"
            )
        seen.add(short)
        item = copy.deepcopy(target)
        item["name"] = regions.display_name(short)
        item["regionalReplicaCount"] = _replicas(
            item.get("regionalReplicaCount", out["replicaCount"]), f"{where}.regionalReplicaCount"
        )
        item["storageAccountType"] = _storage_type(
            item.get("storageAccountType", out["storageAccountType"]), f"{where}.storageAccountType"
        )
        item["excludeFromLatest"] = _bool(
            item.get("excludeFromLatest", False), f"{where}.excludeFromLatest"
        )
        normalized.append(item)
    if source_region not in seen:
        raise invalid_parameter(
            f"The target regions must include the region of the image version, "
            f"'{regions.display_name(source_region)}', where it is published from.",
            target=f"{_PP}.targetRegions",
        )
    out["targetRegions"] = normalized
    mode = out.get("replicationMode")
    if mode is not None:
        if not isinstance(mode, str) or mode.lower() not in ("full", "shallow"):
            raise invalid_parameter(
                f"'{mode}' is not a valid replicationMode: Full or Shallow.",
                target=f"{_PP}.replicationMode",
            )
        out["replicationMode"] = "Shallow" if mode.lower() == "shallow" else "Full"
        if out["replicationMode"] == "Shallow":
            _check_shallow(normalized, source_region)
    return out


def _check_shallow(targets: list[dict[str, Any]], source_region: str) -> None:
    """A shallow version lives in its own region only, with one replica. GalleryRP says only
    "not updatable" of replicationMode; these limits are packer-plugin-azure's (config.go:
    "there can only be one destination region set matching the build location", "the replica
    count can only be 1"), which follow Azure's shallow replication docs. The error code and
    wording are the emulator's own: no spec example shows Azure's."""
    others = [t["name"] for t in targets if regions.normalize(t["name"]) != source_region]
    if others:
        raise invalid_parameter(
            "A version with replicationMode Shallow is stored in its own region only; it "
            f"cannot target {', '.join(others)}.",
            target=f"{_PP}.targetRegions",
        )
    if any(t["regionalReplicaCount"] != 1 for t in targets):
        raise invalid_parameter(
            "A version with replicationMode Shallow has exactly one replica.",
            target=f"{_PP}.targetRegions",
        )


def target_region_names(publishing: dict[str, Any]) -> list[str]:
    """The short names of the publishing profile's target regions, in order."""
    return [regions.normalize(t["name"]) for t in publishing.get("targetRegions", [])]


def normalize_safety(safety: Any) -> dict[str, Any]:
    if safety is None:
        safety = {}
    if not isinstance(safety, dict):
        raise invalid_parameter("safetyProfile must be an object.", target="safetyProfile")
    out = copy.deepcopy(safety)
    out["allowDeletionOfReplicatedLocations"] = _bool(
        out.get("allowDeletionOfReplicatedLocations", True),
        "galleryImageVersion.properties.safetyProfile.allowDeletionOfReplicatedLocations",
    )
    return out


def same_value(given: Any, existing: Any) -> bool:
    """``given`` (what a client sent) says nothing different from ``existing``."""
    if isinstance(given, dict):
        if not isinstance(existing, dict):
            return not given
        return all(same_value(v, existing.get(k)) for k, v in given.items())
    if isinstance(given, list):
        if not isinstance(existing, list) or len(given) != len(existing):
            return False
        return all(same_value(g, e) for g, e in zip(given, existing, strict=True))
    if isinstance(given, str) and isinstance(existing, str):
        return given.lower() == existing.lower()
    return bool(given == existing)


def check_fixed(new_props: dict[str, Any], old_props: dict[str, Any]) -> None:
    """Refuse changes to what a version cannot change after creation."""
    for key, value in new_props.items():
        if key == "publishingProfile" and isinstance(value, dict):
            old = old_props.get("publishingProfile", {})
            for pkey, pvalue in value.items():
                if pkey in UPDATABLE_PUBLISHING:
                    continue
                if not same_value(pvalue, old.get(pkey)):
                    raise property_change_not_allowed(f"{_PP}.{pkey}")
        elif key == "safetyProfile" and isinstance(value, dict):
            old = old_props.get("safetyProfile", {})
            for skey, svalue in value.items():
                if skey not in UPDATABLE_SAFETY and not same_value(svalue, old.get(skey)):
                    raise property_change_not_allowed(
                        f"galleryImageVersion.properties.safetyProfile.{skey}"
                    )
        elif not same_value(value, old_props.get(key)):
            raise property_change_not_allowed(f"galleryImageVersion.properties.{key}")


def changed_location(new_location: Any, old_location: str) -> None:
    if new_location is not None and regions.normalize(str(new_location)) != old_location:
        raise ArmError(
            400,
            "InvalidResourceLocation",
            f"The resource already exists in location '{old_location}'; its location cannot "
            f"change to '{new_location}'.",
        )
