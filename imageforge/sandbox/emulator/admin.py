"""The sandbox's own API under ``/_sandbox/`` (same bearer auth as ARM calls).

    GET    /_sandbox/health         {"status": "ok", "pid": N}
    GET    /_sandbox/status         {"pid", "stateDir", "backend", "resources": {type: n},
                                     "vms": n, "operationsInProgress": n}
    GET    /_sandbox/faults         {"rules": [rule, ...]}   (each with hits and remaining)
    POST   /_sandbox/faults         {"rules": [rule, ...]} (or a list, or one rule) -> 201
    DELETE /_sandbox/faults         clear every rule -> 204
    GET    /_sandbox/stats          counters and the request log (see stats.py)
    DELETE /_sandbox/stats          reset counters and log -> 204
    POST   /_sandbox/marketplace    {publisher, offer, sku, version?}: a newer sandbox
                                    marketplace version -> 201 (handlers/marketplace.py)

A fault rule is described in faults.py.
"""

from __future__ import annotations

import os
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, bad_request_body
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import marketplace
from imageforge.sandbox.emulator.messages import ArmResponse


def handle(em: Emulator, method: str, path: str, body: Any) -> ArmResponse:
    route = path.rstrip("/").lower()
    if route == "/_sandbox/health" and method == "GET":
        return ArmResponse(200, {"status": "ok", "pid": os.getpid()})
    if route == "/_sandbox/status" and method == "GET":
        return ArmResponse(200, status(em))
    if route == "/_sandbox/faults":
        if method == "GET":
            return ArmResponse(200, {"rules": [r.public() for r in em.faults.rules()]})
        if method == "POST":
            items = _rules(body)
            return ArmResponse(201, {"rules": [r.public() for r in em.faults.add(items)]})
        if method == "DELETE":
            em.faults.clear()
            return ArmResponse(204)
    if route == "/_sandbox/stats":
        if method == "GET":
            return ArmResponse(200, em.stats.snapshot())
        if method == "DELETE":
            em.stats.reset()
            return ArmResponse(204)
    if route == "/_sandbox/marketplace" and method == "POST":
        return ArmResponse(201, marketplace.publish(em, body))
    raise ArmError(404, "NotFound", f"The sandbox has no admin endpoint {method} {path}.")


def _rules(body: Any) -> list[Any]:
    if isinstance(body, dict) and "rules" in body:
        body = body["rules"]
    elif isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise bad_request_body('Send {"rules": [...]} with fault rules.')
    return body


def status(em: Emulator) -> dict[str, Any]:
    counts = em.store.count_by_type()
    in_progress = sum(1 for op in em.store.operations() if op["status"] == "InProgress")
    return {
        "pid": os.getpid(),
        "stateDir": str(em.config.state_dir),
        "backend": em.config.backend,
        "resources": counts,
        "vms": counts.get("microsoft.compute/virtualmachines", 0),
        "operationsInProgress": in_progress,
    }
