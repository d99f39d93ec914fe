"""A virtual machine's power actions: POST deallocate and POST generalize.

Deallocate is a long-running operation (202): the VM is ``deallocating``, then
``deallocated`` (back to ``running`` if the operation fails). Generalize is synchronous (200)
and allowed only on a deallocated or stopped VM (OperationNotAllowed otherwise); the backend
generalizes the machine, and the instance view then says ``OSState/generalized``.
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.emulator.armerrors import not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, vms
from imageforge.sandbox.emulator.lro import utc_now
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse


def deallocate(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = vms.require_vm(em, req)
        common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")
        res.internal["power"] = "deallocating"
        em.store.put(res)

    def work(_op_id: str) -> None:
        with em.store.lock:
            current = em.store.get(res.id)
            if current is not None:
                current.internal.update(power="deallocated", stateTime=utc_now())
                em.store.put(current)

    def on_failure(_error: dict[str, Any]) -> None:
        with em.store.lock:
            current = em.store.get(res.id)
            if current is not None:
                current.internal["power"] = "running"
                em.store.put(current)

    return em.ops.start(
        req, provider=vms.PROVIDER, location=res.body["location"], resource_id=res.id,
        work=work, on_failure=on_failure, status=202,
    )  # fmt: skip


def generalize(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = vms.require_vm(em, req)
        common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")
        if res.internal.get("power") not in ("deallocated", "stopped"):
            raise not_allowed(
                f"Operation 'generalize' is not allowed on VM '{res.body['name']}' since the VM "
                f"is {res.internal.get('power')}. Deallocate the VM first."
            )
    em.backend.generalize(res.internal["vmKey"])
    with em.store.lock:
        current = em.store.get(res.id)
        if current is not None:
            current.internal.update(generalized=True, stateTime=utc_now())
            em.store.put(current)
    return ArmResponse(200)
