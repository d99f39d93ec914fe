"""Site settings: subscription, resource group, gallery, build location, tags, Packer binary,
directories, timeouts, the sandbox.

They come from Invoke's configuration: tasks.py declares every key with its default in
``ns.configure``; invoke.yaml and INVOKE_IMAGEFORGE_* variables override them. ``Site`` is read
once per task (``Site.from_config``), and every value is checked there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageforge.errors import ConfigError
from imageforge.kinds import TARGETS, Target

LOCK_GALLERY_ENV = "INVOKE_IMAGEFORGE_LOCK_GALLERY"


@dataclass(frozen=True)
class Site:
    """Site settings, from Invoke's ``imageforge`` configuration namespace."""

    root: Path
    subscription_id: str = ""
    resource_group: str = "rg-imageforge"
    gallery: str = "imageforge"
    location: str = "westeurope"
    tags: Mapping[str, str] = field(default_factory=dict)
    packer: str = "packer"
    packer_timeout: int = 4 * 3600
    on_error: str = "cleanup"
    target: str = "auto"
    images_dir: str = "images"
    build_dir: str = "build"
    reports_dir: str = "reports"
    test_vm_ttl_hours: int = 6
    replicate_timeout: int = 3600
    max_age_days: int = 30
    test_allowed_source: str = ""
    egress_ip_url: str = "https://api.ipify.org"
    test_subnet_id: str = ""
    #: Keep a CanNotDelete lock on ``resource_group`` (``invoke build`` ensures it).
    lock_gallery: bool = True
    sandbox: Mapping[str, Any] = field(default_factory=dict)

    @property
    def images_path(self) -> Path:
        return self.root / self.images_dir

    @property
    def build_path(self) -> Path:
        return self.root / self.build_dir

    @property
    def reports_path(self) -> Path:
        return self.root / self.reports_dir

    def subscription(self) -> str:
        """The configured subscription, else the usual environment variables, else ''."""
        return (
            self.subscription_id
            or os.environ.get("ARM_SUBSCRIPTION_ID", "")
            or os.environ.get("AZURE_SUBSCRIPTION_ID", "")
        )

    def resolve_target(self, requested: str | None = None) -> tuple[Target, str]:
        """Return (target, reason). ``auto`` picks azure when a subscription is configured."""
        wanted = requested or self.target or "auto"
        if wanted == "auto":
            if self.subscription():
                return "azure", "an Azure subscription is configured"
            return "sandbox", "no Azure subscription is configured"
        for target in TARGETS:
            if wanted == target:
                return target, f"--target {wanted}"
        raise ConfigError(f"unknown --target {wanted!r}: expected azure, sandbox or auto")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], root: Path) -> Site:
        """Build from Invoke's ``c.imageforge`` (a mapping); unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__ if f != "root"}
        values = dict(cfg)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError("unknown setting", key=f"imageforge.{unknown[0]}")
        if values.get("on_error", "cleanup") not in (
            "cleanup",
            "abort",
            "ask",
            "run-cleanup-provisioner",
        ):
            raise ConfigError(
                f"{values['on_error']!r} is not a Packer -on-error mode", key="imageforge.on_error"
            )
        for key in ("tags", "sandbox"):
            if key in values:
                values[key] = dict(values[key] or {})
        if "max_age_days" in values:
            values["max_age_days"] = parse_days(
                values["max_age_days"], where="imageforge.max_age_days"
            )
        if "replicate_timeout" in values:
            values["replicate_timeout"] = parse_seconds(
                values["replicate_timeout"], where="imageforge.replicate_timeout"
            )
        # Invoke reads any environment value but "" and "0" as true for a boolean setting, so
        # INVOKE_IMAGEFORGE_LOCK_GALLERY=false would lock: its own text is what counts
        raw = os.environ.get(LOCK_GALLERY_ENV)
        if "lock_gallery" in values or raw is not None:
            values["lock_gallery"] = parse_switch(
                values.get("lock_gallery") if raw is None else raw,
                where=LOCK_GALLERY_ENV if raw is not None else "imageforge.lock_gallery",
            )
        return cls(root=root, **values)


def parse_days(value: Any, *, where: str) -> int:
    """A whole number of days, 0 or more."""
    text = str(value).strip()
    if not text.isdigit():
        raise ConfigError(f"{where}: {value!r} is not a whole number of days")
    return int(text)


def parse_switch(value: Any, *, where: str) -> bool:
    """true or false (YAML's booleans, or their spellings in an environment variable)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{where}: {value!r} is not true or false")


def parse_seconds(value: Any, *, where: str) -> int:
    """A positive whole number of seconds (from a flag, a setting or an environment variable)."""
    text = str(value).strip()
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"{where}: {value!r} is not a positive number of seconds")
    return int(text)
