"""imageforge's Azure side: the same SDK clients against Azure or the sandbox emulator.

    credentials  make_credential (DefaultAzureCredential, AzurePipelinesCredential, sandbox)
    clients      Session, open_session, session_for_emulator (base_url + CA for the sandbox)
    gallery      gallery, image definition, versions, tags, version reservation
    lifecycle    replicate, promote, rollback, deprecate, prune, versions table, cleanup
    testvm       throw-away test and build VMs, capture of the sandbox build VM

The package re-exports nothing: import the module you need (importing one module never loads
the others). Nothing here imports an Azure SDK at import time; the SDKs load when a client is
first used.
"""
