"""A local Azure Resource Manager emulator for the sandbox target.

An HTTPS server (Starlette on uvicorn) answering the REST paths, api-versions, long-running
operation headers and error envelopes of Azure Resource Manager for what imageforge uses:
resource groups, Compute Gallery galleries/image definitions/versions, virtual machines and the
network resources a test VM needs. State lives in SQLite under the state dir; machines are run
by a ``MachineBackend`` (imageforge.sandbox.backend). Start one with
``python -m imageforge.sandbox.emulator``, ``imageforge.sandbox.harness.running_emulator()``
(tests) or ``imageforge.sandbox.control.up()`` (``invoke sandbox.up``).

Modules: config (settings), server (process), app (HTTP pipeline), admin (``/_sandbox/``),
faults, stats, lro (long-running operations), store (SQLite), routing, apiversions, regions,
certs, armerrors, handlers/ (one module per resource family).
"""

from __future__ import annotations

from imageforge.sandbox.emulator.config import SANDBOX_SUBSCRIPTION_ID, EmulatorConfig

__all__ = ["SANDBOX_SUBSCRIPTION_ID", "EmulatorConfig"]
