"""The sandbox: a local stand-in for Azure that the same SDK clients, Packer and Testinfra run
against (docs/ARCHITECTURE.md, "The sandbox").

    emulator   the ARM emulator (Starlette on uvicorn, HTTPS with its own CA, SQLite state)
    machines   the VMs behind it: Debian root filesystems run as chroots in their namespaces
    backend    the contract between the two, and the sandbox marketplace
    control    start, stop, inspect, reset (`invoke sandbox.*`)
    harness    an emulator in a child process, for tests

A regular package (not a namespace one), so that an installed imageforge includes it.
"""
