"""The operation monitors the long-running answers point at.

- Azure-AsyncOperation (``.../locations/{l}/capsOperations|operations/{id}``): 200 with
  ``{"name", "status", "startTime", "endTime"?, "error"?}``.
- Location (``?monitor=true``, network ``operationResults``, ``/operationresults/{id}``):
  202 with Location and Retry-After while running, then 200/204 — or the operation's error.
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.lro import FAILED, IN_PROGRESS
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse


def _operation(em: Emulator, req: ArmRequest) -> dict[str, Any]:
    op_id = req.param("operationId")
    op = em.ops.poll(op_id)
    if op is None or op["subscription"].lower() != req.subscription.lower():
        raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
    return op


def _status_body(op: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": op["name"],
        "status": op["status"],
        "startTime": op["startTime"],
    }
    if op["status"] != IN_PROGRESS:
        body["endTime"] = op.get("endTime")
    if op["status"] == FAILED and op.get("error"):
        body["error"] = op["error"]
    return body


def async_status(em: Emulator, req: ArmRequest) -> ArmResponse:
    if req.query.get("monitor", "").lower() == "true":
        return location_status(em, req)
    op = _operation(em, req)
    headers = {}
    if op["status"] == IN_PROGRESS:
        headers["Retry-After"] = str(em.ops.retry_after(op))
    return ArmResponse(200, _status_body(op), headers)


def location_status(em: Emulator, req: ArmRequest) -> ArmResponse:
    op = _operation(em, req)
    if op["status"] == IN_PROGRESS:
        _, location = em.ops.urls(req.base_url, op)
        return ArmResponse(
            202, None, {"Location": location, "Retry-After": str(em.ops.retry_after(op))}
        )
    if op["status"] == FAILED:
        error = op.get("error") or {"code": "InternalOperationError", "message": "failed"}
        raise ArmError(
            400 if error.get("code") not in ("InternalServerError",) else 500,
            error["code"],
            error.get("message", ""),
        )
    if op.get("result") is not None:
        return ArmResponse(200, op["result"])
    if op["style"] == "gallery" and op.get("method") in ("PUT", "PATCH"):
        # GalleryRP's PUT and PATCH say `final-state-via: location`: the last answer of the
        # Location monitor is the resource itself, as a GET of it would return it.
        return em.read_resource(op["resourceId"], op["apiVersion"], req.base_url)
    return ArmResponse(200 if op["style"] == "resources" else 204)
