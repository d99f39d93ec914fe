"""The one credential factory: ``make_credential(target)``.

- ``sandbox``: ``SandboxCredential``, a static local token. The sandbox emulator accepts any
  bearer token; no identity library is involved.
- ``azure`` inside an Azure DevOps job whose AzureCLI@2 step uses a workload-identity service
  connection (it sets ``AZURESUBSCRIPTION_SERVICE_CONNECTION_ID``, ``AZURESUBSCRIPTION_CLIENT_ID``
  and ``AZURESUBSCRIPTION_TENANT_ID``) with ``SYSTEM_ACCESSTOKEN`` mapped into the step's
  environment: ``AzurePipelinesCredential`` (OIDC, no secret anywhere).
- ``azure`` otherwise: ``DefaultAzureCredential`` (environment, workload identity, managed
  identity, ``az login``). Terraform-style ``ARM_CLIENT_ID`` / ``ARM_CLIENT_SECRET`` /
  ``ARM_TENANT_ID`` (and the certificate variants) are copied to the ``AZURE_*`` names
  ``EnvironmentCredential`` reads when only the ``ARM_*`` ones are set. Only variable *names* are
  ever logged.

azure-identity is imported inside ``make_credential`` so that merely importing imageforge (or
``invoke --list``) never loads it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import MutableMapping
from typing import Any

from imageforge.errors import ConfigError

log = logging.getLogger("imageforge.azure")

#: The token the sandbox credential hands out (the emulator accepts any non-empty token).
SANDBOX_TOKEN = "imageforge-sandbox"
_SANDBOX_LIFETIME = 24 * 3600

#: What AzureCLI@2 sets for a workload-identity service connection, plus the job token.
PIPELINES_VARIABLES = (
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
)
SYSTEM_ACCESSTOKEN = "SYSTEM_ACCESSTOKEN"

#: Terraform/Packer-style names and the names azure-identity's EnvironmentCredential reads.
ARM_TO_AZURE = (
    ("ARM_TENANT_ID", "AZURE_TENANT_ID"),
    ("ARM_CLIENT_ID", "AZURE_CLIENT_ID"),
    ("ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET"),
    ("ARM_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PATH"),
    ("ARM_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
)


class SandboxCredential:
    """A static token for the local sandbox emulator (TokenCredential and SupportsTokenInfo)."""

    def __init__(self, token: str = SANDBOX_TOKEN) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + _SANDBOX_LIFETIME)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        expires = int(time.time()) + _SANDBOX_LIFETIME
        return AccessTokenInfo(self._token, expires, refresh_on=expires - 3600)

    def close(self) -> None:
        return None

    def __enter__(self) -> SandboxCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "SandboxCredential()"


def pipelines_settings(environ: MutableMapping[str, str]) -> dict[str, str] | None:
    """The AzurePipelinesCredential arguments if this is such a pipeline step, else None.

    A step with the service connection's variables but no ``SYSTEM_ACCESSTOKEN`` is almost
    always a missing ``env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)``: that is logged (by
    name) and the caller falls back to DefaultAzureCredential (the step's ``az login``).
    """
    values = {name: environ.get(name, "").strip() for name in PIPELINES_VARIABLES}
    if not all(values.values()):
        return None
    if not environ.get(SYSTEM_ACCESSTOKEN, "").strip():
        log.warning(
            "Azure DevOps service connection variables are set but %s is not: map it in the "
            "step (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)) to use workload identity; "
            "falling back to DefaultAzureCredential",
            SYSTEM_ACCESSTOKEN,
        )
        return None
    return {
        "service_connection_id": values["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
        "client_id": values["AZURESUBSCRIPTION_CLIENT_ID"],
        "tenant_id": values["AZURESUBSCRIPTION_TENANT_ID"],
        "system_access_token": environ[SYSTEM_ACCESSTOKEN].strip(),
    }


def map_arm_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Copy ARM_* service-principal variables to the AZURE_* names, if only ARM_* are set.

    Nothing is copied when any AZURE_* identity variable is already set (they win, and mixing
    two identities would be worse than either). Returns the AZURE_* names that were set.
    """
    if any(environ.get(azure_name) for _, azure_name in ARM_TO_AZURE):
        return []
    if not (environ.get("ARM_CLIENT_ID") and environ.get("ARM_TENANT_ID")):
        return []
    mapped = []
    for arm_name, azure_name in ARM_TO_AZURE:
        value = environ.get(arm_name)
        if value:
            environ[azure_name] = value
            mapped.append(azure_name)
    if mapped:
        log.info("using the ARM_* service principal variables as %s", ", ".join(mapped))
    return mapped


def make_credential(target: str, *, environ: MutableMapping[str, str] = os.environ) -> Any:
    """The credential for ``target`` (``sandbox`` or ``azure``); see the module docstring."""
    env = environ
    if target == "sandbox":
        return SandboxCredential()
    if target != "azure":
        raise ConfigError(f"unknown target {target!r}: expected azure or sandbox")
    pipelines = pipelines_settings(env)
    if pipelines is not None:
        from azure.identity import AzurePipelinesCredential

        log.info("authenticating with the Azure DevOps service connection (workload identity)")
        return AzurePipelinesCredential(**pipelines)
    map_arm_environment(env)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
