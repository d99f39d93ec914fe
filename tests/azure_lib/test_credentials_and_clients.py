"""The credential factory's choices and the client factory's sessions."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure_helpers import REPO, load_image, make_site, new_session

from imageforge.azure import credentials, gallery
from imageforge.azure.credentials import SandboxCredential, make_credential
from imageforge.errors import ConfigError, SandboxError
from imageforge.pipeline.sandbox import sandbox_settings
from imageforge.pipeline.session import open_session
from imageforge.sandbox import control

PIPELINE_ENV = {
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "00000000-0000-0000-0000-0000000000aa",
    "AZURESUBSCRIPTION_CLIENT_ID": "00000000-0000-0000-0000-0000000000bb",
    "AZURESUBSCRIPTION_TENANT_ID": "00000000-0000-0000-0000-0000000000cc",
}
SECRET = "not-a-real-secret-but-treat-it-as-one"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No identity from the developer's environment leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("ARM_", "AZURE_", "AZURESUBSCRIPTION_", "SYSTEM_ACCESSTOKEN", "MSI_",
                            "IDENTITY_")):  # fmt: skip
            monkeypatch.delenv(name)


# credentials ------------------------------------------------------------------------------


def test_sandbox_credential_is_static_and_local():
    credential = make_credential("sandbox", environ={})
    assert isinstance(credential, SandboxCredential)
    token = credential.get_token("https://management.azure.com/.default")
    assert token.token == credentials.SANDBOX_TOKEN and token.expires_on > time.time() + 3600
    info = credential.get_token_info("https://management.azure.com/.default")
    assert info.token == credentials.SANDBOX_TOKEN and info.refresh_on < info.expires_on
    with credential as same:
        assert same is credential
    assert repr(credential) == "SandboxCredential()"


def test_azure_pipelines_credential_inside_a_service_connection_step(clean_env):
    from azure.identity import AzurePipelinesCredential

    env = {**PIPELINE_ENV, "SYSTEM_ACCESSTOKEN": SECRET}
    credential = make_credential("azure", environ=env)
    assert isinstance(credential, AzurePipelinesCredential)
    credential.close()


def test_missing_system_accesstoken_falls_back_and_says_so(clean_env, caplog):
    from azure.identity import DefaultAzureCredential

    caplog.set_level(logging.INFO, logger="imageforge.azure")
    credential = make_credential("azure", environ=dict(PIPELINE_ENV))
    assert isinstance(credential, DefaultAzureCredential)
    credential.close()
    assert "SYSTEM_ACCESSTOKEN is not" in caplog.text
    assert "$(System.AccessToken)" in caplog.text


def test_default_credential_outside_pipelines(clean_env):
    from azure.identity import DefaultAzureCredential

    credential = make_credential("azure", environ={})
    assert isinstance(credential, DefaultAzureCredential)
    credential.close()


def test_arm_service_principal_variables_are_mapped_without_logging_secrets(clean_env, caplog):
    caplog.set_level(logging.DEBUG)
    env = {"ARM_CLIENT_ID": "cid", "ARM_TENANT_ID": "tid", "ARM_CLIENT_SECRET": SECRET}
    credential = make_credential("azure", environ=env)
    credential.close()
    assert env["AZURE_CLIENT_ID"] == "cid" and env["AZURE_TENANT_ID"] == "tid"
    assert env["AZURE_CLIENT_SECRET"] == SECRET
    assert "AZURE_CLIENT_SECRET" in caplog.text
    assert SECRET not in caplog.text


def test_azure_variables_win_over_arm_ones():
    env = {
        "ARM_CLIENT_ID": "arm", "ARM_TENANT_ID": "arm", "ARM_CLIENT_SECRET": "arm",
        "AZURE_CLIENT_ID": "azure",
    }  # fmt: skip
    assert credentials.map_arm_environment(env) == []
    assert "AZURE_CLIENT_SECRET" not in env and env["AZURE_CLIENT_ID"] == "azure"
    assert credentials.map_arm_environment({"ARM_CLIENT_SECRET": "x"}) == []
    cert = {"ARM_CLIENT_ID": "c", "ARM_TENANT_ID": "t", "ARM_CLIENT_CERTIFICATE_PATH": "/k.pem"}
    assert credentials.map_arm_environment(cert) == [
        "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
    ]  # fmt: skip


def test_partial_pipeline_variables_are_not_a_pipeline():
    partial = {"AZURESUBSCRIPTION_CLIENT_ID": "x", "SYSTEM_ACCESSTOKEN": SECRET}
    assert credentials.pipelines_settings(partial) is None


def test_unknown_target_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown target 'aws'"):
        make_credential("aws", environ={})


def test_importing_imageforge_azure_loads_no_azure_sdk():
    code = (
        "import sys, imageforge.azure, imageforge.azure.testvm, imageforge.azure.replication, "
        "imageforge.azure.promotion, imageforge.azure.retention, imageforge.azure.janitor;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('azure', 'rich', 'paramiko', 'msal')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# sessions ---------------------------------------------------------------------------------


def test_azure_session_needs_a_subscription(clean_env):
    with pytest.raises(ConfigError) as caught:
        open_session(make_site(), "azure")
    message = str(caught.value)
    assert "imageforge.subscription_id" in message and "ARM_SUBSCRIPTION_ID" in message
    assert "\n" not in message


def test_azure_session_from_config_or_environment(clean_env, monkeypatch):
    with open_session(make_site(subscription_id="sub-1"), "azure") as session:
        assert session.target == "azure" and session.subscription_id == "sub-1"
        assert session.base_url is None and session.connection_verify is None
        options = session.options()
        assert "base_url" not in options and "connection_verify" not in options
        policy = options["retry_policy"]
        assert policy.total_retries == 15 and policy.status_retries == 15
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", "sub-2")
    with open_session(make_site(), "azure") as session:
        assert session.subscription_id == "sub-2"


def test_sandbox_session_needs_a_running_sandbox(tmp_path):
    site = make_site(sandbox={"state_dir": str(tmp_path / "none"), "backend": "inert"})
    with pytest.raises(SandboxError) as caught:
        open_session(site, "sandbox")
    assert str(caught.value) == "the sandbox is not running: start it with `invoke sandbox.up`"
    with pytest.raises(ConfigError, match="imageforge.sandbox.colour: unknown sandbox setting"):
        open_session(make_site(sandbox={"colour": "blue"}), "sandbox")
    with pytest.raises(ConfigError, match="unknown target"):
        open_session(make_site(), "cloud")


def test_sandbox_session_against_a_running_sandbox(tmp_path):
    settings = {
        "state_dir": str(tmp_path / "sandbox"), "port": 0, "backend": "inert",
        "replication_seconds": 0, "lro_seconds": 0,
    }  # fmt: skip
    site = make_site(sandbox=settings)
    info = control.up(sandbox_settings(site))
    try:
        with open_session(site, "sandbox") as session:
            assert session.target == "sandbox" and session.base_url == info.url
            assert session.connection_verify == str(info.ca_path)
            assert Path(session.connection_verify).is_file()
            assert session.compute is session.compute  # created once, cached
            gallery.ensure_image_definition(session, load_image())
            assert gallery.list_versions(session, load_image()) == []
        assert "compute" not in session.__dict__  # closed
    finally:
        control.down(sandbox_settings(site))


def test_a_throttling_storm_longer_than_azure_cores_default_is_ridden_out(arm, defined):
    with new_session(arm) as session:
        gallery.ensure_image_definition(session, defined)
        arm.reset_stats()
        arm.set_faults([{"kind": "throttle", "method": "GET", "path": "/images/debian-12$",
                         "count": 5, "retry_after": 1}])  # fmt: skip
        started = time.monotonic()
        gallery.ensure_image_definition(session, defined)
        assert time.monotonic() - started >= 5  # Retry-After honoured each time
        assert arm.stats()["throttled"] == 5
