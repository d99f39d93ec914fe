"""imageforge's Azure side: the same SDK clients against Azure or the sandbox emulator.

    credentials   make_credential (DefaultAzureCredential, AzurePipelinesCredential, sandbox)
    clients       Session, azure_session, sandbox_session, session_for_emulator
    arm, ids      ids, JSON views of SDK models, ARM errors as one-line messages
    records       VersionInfo: a version as parsed from its REST JSON
    tagsapi       the Tags API, every tag write
    definition    the image definition's body and what Azure cannot change
    gallery       every REST call on galleries, definitions and versions
    reservation   the version a build publishes (Lamport's bakery over Tags API registers)
    marketplace   base images and the version `latest` means
    evidence      test evidence on a version, and the promote gate
    replication   replicate to the target regions and follow it
    promotion     promote and rollback
    retention     deprecate and prune
    janitor       deleting the throw-away groups runs left behind
    locks         the CanNotDelete lock on the gallery's group, lifted around deletes
    sharing       the gallery's sharing profile, and Reader role assignments
    testvm        the throw-away test VM (throwaway, vmbodies, vmaccess, winrmcert, egress)
    buildvm       the sandbox build VM and its capture into a version

The package re-exports nothing: import the module you need (importing one module never loads
the others). Nothing here imports an Azure SDK at import time; the SDKs load when a client is
first used.
"""
