"""imageforge's Azure side: the same SDK clients against Azure or the sandbox emulator.

    credentials  make_credential (DefaultAzureCredential, AzurePipelinesCredential, sandbox)
    clients      Session, open_session, session_for_emulator (base_url + CA for the sandbox)
    gallery      gallery, image definition, versions, tags, version reservation
    lifecycle    replicate, promote, rollback, deprecate, prune, versions table, cleanup
    testvm       throw-away test and build VMs, capture of the sandbox build VM

Nothing here imports an Azure SDK at import time; the SDKs load when a client is first used.
"""

from imageforge.azure.clients import Session, open_session, session_for_emulator
from imageforge.azure.credentials import SandboxCredential, make_credential
from imageforge.azure.gallery import (
    GalleryVersionSource,
    ReplicationStatus,
    VersionInfo,
    ensure_gallery,
    ensure_image_definition,
    get_version,
    list_versions,
    replication_status,
    reserve_version,
    set_version_tags,
)
from imageforge.azure.lifecycle import (
    DeprecateResult,
    PromoteResult,
    PruneResult,
    ReplicationResult,
    RollbackResult,
    cleanup,
    deprecate,
    promote,
    prune,
    record_test_result,
    render_versions,
    replicate,
    rollback,
    versions_table,
)
from imageforge.azure.testvm import TestVm, capture_version, deploy_test_vm, sandbox_build_vm

__all__ = [
    "DeprecateResult",
    "GalleryVersionSource",
    "PromoteResult",
    "PruneResult",
    "ReplicationResult",
    "ReplicationStatus",
    "RollbackResult",
    "SandboxCredential",
    "Session",
    "TestVm",
    "VersionInfo",
    "capture_version",
    "cleanup",
    "deploy_test_vm",
    "deprecate",
    "ensure_gallery",
    "ensure_image_definition",
    "get_version",
    "list_versions",
    "make_credential",
    "open_session",
    "promote",
    "prune",
    "record_test_result",
    "render_versions",
    "replicate",
    "replication_status",
    "reserve_version",
    "rollback",
    "sandbox_build_vm",
    "session_for_emulator",
    "set_version_tags",
    "versions_table",
]
