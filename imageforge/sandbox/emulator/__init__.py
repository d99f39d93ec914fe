"""A local Azure Resource Manager emulator for the sandbox target.

An HTTPS server (Starlette on uvicorn) answering the REST paths, api-versions, long-running
operation headers and error envelopes of Azure Resource Manager for what imageforge uses:
resource groups, Compute Gallery galleries/image definitions/versions, virtual machines and the
network resources a test VM needs. State lives in SQLite under the state dir; machines are run
by a ``MachineBackend`` (imageforge.sandbox.backend). Start one with
``python -m imageforge.sandbox.emulator``, ``imageforge.sandbox.harness.running_emulator()``
(tests) or ``imageforge.sandbox.control.up()`` (``invoke sandbox.up``).

Modules, from the process down:

- ``__main__`` (command line), ``server`` (one process: TLS, state, backend, uvicorn),
  ``backends`` (the machine backend by name), ``config`` (settings), ``certs`` (local CA);
- ``app`` (the HTTP pipeline: auth, admin, faults, api-versions, dispatch), ``admin``
  (``/_sandbox/``), ``faults``, ``stats``, ``apiversions``, ``routing`` (route table, CRUD
  routes), ``messages`` (request/response), ``armerrors`` (ARM's error envelope);
- ``context`` (``Emulator``: what the handlers share), ``lro`` (long-running operations),
  ``store`` (SQLite), ``regions``, ``vmsizes``;
- ``handlers/``: the resource handlers and the route table (see its package docstring).
"""

from __future__ import annotations

from imageforge.sandbox.emulator.config import SANDBOX_SUBSCRIPTION_ID, EmulatorConfig

__all__ = ["SANDBOX_SUBSCRIPTION_ID", "EmulatorConfig"]
