"""What each task does, stage by stage, on either target; one module per stage of the
lifecycle (docs/ARCHITECTURE.md)::

    context   the run: commit, run id, actor, build id, auth mode (computed once); sessions
    timings   wall time per phase, and its table
    validate  render, packer fmt/validate, the plugin option lint
    plan      one image's build as data: the dry run prints it, the build executes it
    hosts     the one difference between targets: who boots, generalizes and publishes
    build     `invoke build`: reserve, Packer, publish, then test, replicate, promote
    parallel  several images at once
    test      a test VM from the exact version, Testinfra, the evidence
    release   replicate, promote, rollback, deprecate, prune, versions, outdated, cleanup
    sandbox   which images the sandbox can build; starting and describing it
    locking   invoke lock / unlock (the gallery group's CanNotDelete lock)
    sharing   invoke share (subscriptions, tenants, Reader)
    show      what the tasks print with rich (progress bars, the versions table)

tasks.py calls the ``*_task`` functions; the library underneath (imageforge.azure, render,
packer, verify) knows nothing of Invoke. Heavy third-party imports (Azure SDKs, rich) load
inside the functions that use them.
"""
