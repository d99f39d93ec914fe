"""The ARM session of a target: the running sandbox's emulator, or the configured subscription."""

from __future__ import annotations

from imageforge.azure.clients import Session, azure_session, sandbox_session
from imageforge.errors import ConfigError, SandboxError
from imageforge.kinds import TARGETS, Target
from imageforge.pipeline.sandbox import sandbox_settings
from imageforge.sandbox import control
from imageforge.site import Site


def open_session(site: Site, target: Target) -> Session:
    """A session for ``target``: the running sandbox emulator, or the configured subscription."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}: expected azure or sandbox")
    if target == "sandbox":
        info = control.running(sandbox_settings(site))
        if info is None:
            raise SandboxError(control.NOT_RUNNING)
        return sandbox_session(site, info.url, info.ca_path, info.subscription_id)
    subscription = site.subscription()
    if not subscription:
        raise ConfigError(
            "no Azure subscription: set imageforge.subscription_id (invoke.yaml or "
            "INVOKE_IMAGEFORGE_SUBSCRIPTION_ID) or ARM_SUBSCRIPTION_ID"
        )
    return azure_session(site, subscription)


def session_for(site: Site, target: str | None) -> Session:
    """The session of ``--target`` as given (auto, azure or sandbox)."""
    target_name, _ = site.resolve_target(target)
    return open_session(site, target_name)
