"""The one client factory: a ``Session`` holds the credential and builds the SDK clients.

Both targets use the very same SDK clients (azure-mgmt-compute, -network, -resource); the
sandbox only differs by ``base_url`` (the local emulator), ``connection_verify`` (its CA) and
the credential. Every client gets azure-core's retry policy, configured so that a storm of
429s or transient 5xx is ridden out (the policy honours ``Retry-After``), and ARM polling for
long-running operations: nothing in imageforge.azure hand-writes a retry or an LRO poll loop.

``azure_session`` and ``sandbox_session`` make the two kinds; which target a task runs on, and
where the running sandbox is, is the pipeline's to know (imageforge.pipeline.context.
open_session). ``session_for_emulator`` is for tests that start their own emulator
(imageforge.sandbox.harness.running_emulator).
The SDKs are imported when a client is first used, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from imageforge.azure.credentials import SandboxCredential, make_credential
from imageforge.site import Site

#: azure-core retry settings. ``retry_status`` bounds retries on 408/429/5xx answers (azure-core
#: defaults it to 3, too few for a throttling storm); Retry-After decides each wait when given.
RETRY_AZURE: dict[str, Any] = {
    "retry_total": 15,
    "retry_status": 15,
    "retry_connect": 5,
    "retry_read": 5,
    "retry_backoff_factor": 0.8,
    "retry_backoff_max": 60,
}
#: The sandbox answers in milliseconds: back off briefly (Retry-After still rules when given).
RETRY_SANDBOX: dict[str, Any] = {
    **RETRY_AZURE,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 5,
}
#: ARM polling waits Retry-After when the service sends it; this is the fallback interval.
POLLING_AZURE = 15
POLLING_SANDBOX = 1


def closing_retry_policy(**settings: Any) -> Any:
    """azure-core's RetryPolicy that also closes each response it retries.

    azure-core leaves a retried response open; for a streamed request (the SDKs stream the
    first request of every long-running operation) that keeps its connection checked out
    until the response is garbage-collected, one leaked socket per retry in a 429 storm.
    The retry decisions, Retry-After handling and back-off are azure-core's own.
    """
    from azure.core.pipeline.policies import RetryPolicy

    class ClosingRetryPolicy(RetryPolicy):
        def sleep(self, settings: Any, transport: Any, response: Any = None) -> None:
            try:
                super().sleep(settings, transport, response=response)
            finally:
                if response is not None:
                    try:
                        response.http_response.close()
                    except Exception:  # noqa: BLE001 - best effort
                        pass

    return ClosingRetryPolicy(**settings)


@dataclass
class Session:
    """Credentials and lazily created, cached SDK clients for one target."""

    site: Site
    target: str
    subscription_id: str
    credential: Any
    base_url: str | None = None
    connection_verify: str | None = None
    client_options: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Keyword arguments every SDK client of this session is built with."""
        sandbox = self.target == "sandbox"
        retry: dict[str, Any] = dict(RETRY_SANDBOX if sandbox else RETRY_AZURE)
        retry.update({k: v for k, v in self.client_options.items() if k.startswith("retry_")})
        opts: dict[str, Any] = {
            "retry_policy": closing_retry_policy(**retry),
            "polling_interval": POLLING_SANDBOX if sandbox else POLLING_AZURE,
        }
        if self.base_url:
            opts["base_url"] = self.base_url
        if self.connection_verify:
            opts["connection_verify"] = self.connection_verify
        opts.update({k: v for k, v in self.client_options.items() if not k.startswith("retry_")})
        return opts

    @cached_property
    def compute(self) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(self.credential, self.subscription_id, **self.options())

    @cached_property
    def network(self) -> Any:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential, self.subscription_id, **self.options())

    @cached_property
    def resource(self) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription_id, **self.options())

    @cached_property
    def authorization(self) -> Any:
        """Role assignments (azure-mgmt-authorization; imageforge.azure.sharing)."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(
            self.credential, self.subscription_id, **self.options()
        )

    @property
    def where(self) -> str:
        """How error messages name the ARM endpoint."""
        return f"the sandbox at {self.base_url}" if self.target == "sandbox" else "Azure"

    def close(self) -> None:
        """Close the clients created so far (their HTTP sessions) and the credential."""
        for name in ("compute", "network", "resource", "authorization"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                client.close()
        closer = getattr(self.credential, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def azure_session(site: Site, subscription_id: str) -> Session:
    """A session on a real subscription (DefaultAzureCredential or the pipeline's)."""
    return Session(site, "azure", subscription_id, make_credential("azure"))


def sandbox_session(site: Site, url: str, ca_path: Path, subscription_id: str) -> Session:
    """A session on a sandbox emulator at ``url``, verified against its CA."""
    return Session(
        site,
        "sandbox",
        subscription_id,
        make_credential("sandbox"),
        base_url=url,
        connection_verify=str(ca_path),
    )


def session_for_emulator(handle: Any, site: Site, **client_options: Any) -> Session:
    """A sandbox session against an emulator started by ``running_emulator`` (tests)."""
    return Session(
        site,
        "sandbox",
        handle.subscription_id,
        SandboxCredential(),
        base_url=handle.base_url,
        connection_verify=str(handle.ca_path),
        client_options=client_options,
    )
