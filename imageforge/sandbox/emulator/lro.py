"""Long-running operations: ARM's 201/202 + Azure-AsyncOperation/Location/Retry-After dance.

``Operations.start`` records an operation, runs its work on a background thread and returns
the initial answer with the monitor headers. The monitor endpoints (handlers.operations)
answer ``{"status": "InProgress"|"Succeeded"|"Failed", "error"?}`` (Azure-AsyncOperation) or
202-until-done (Location). Retry-After is always an integer >= 1: the expected remaining time
when the work says so, else one that grows with the operation's age, so clients never busy-poll.
A poll of a nearly finished operation waits briefly for it, so fast operations are reported
done on the first poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Store

log = logging.getLogger("imageforge.sandbox.emulator")

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

Work = Callable[[str], Any]
OnFailure = Callable[[dict[str, Any]], None]


class Abandoned(Exception):  # noqa: N818 - a signal, not an error
    """Raised by work that stops because the emulator is shutting down: the operation stays
    InProgress in the state file and is resumed (or failed) at the next start."""


def utc_now() -> str:
    """ARM's timestamp format (RFC 3339, UTC, microseconds)."""
    return dt.datetime.now(dt.UTC).isoformat()


def sandbox_error(err: SandboxError) -> dict[str, Any]:
    return {"code": "SandboxMachineError", "message": str(err)}


class Operations:
    """Creates, runs and reports long-running operations."""

    def __init__(self, store: Store, *, lro_seconds: float, poll_wait_seconds: float) -> None:
        self.store = store
        self.lro_seconds = lro_seconds
        self.poll_wait_seconds = poll_wait_seconds
        self.stopping = threading.Event()
        self._done: dict[str, threading.Event] = {}
        self._estimates: dict[str, float] = {}

    # starting --------------------------------------------------------------------------

    def start(
        self,
        req: ArmRequest,
        *,
        provider: str,
        location: str,
        resource_id: str,
        work: Work,
        on_failure: OnFailure | None = None,
        status: int = 202,
        body: Any = None,
        style: str = "compute",
        op_id: str | None = None,
    ) -> ArmResponse:
        """Record an operation, run ``work(op_id)`` in the background, return the answer.

        ``style`` picks the monitor URLs: ``compute`` (capsOperations for galleries is
        ``gallery``), ``network`` or ``resources`` (resource group deletion: Location only).
        """
        op_id = op_id or str(uuid.uuid4())
        op = {
            "id": op_id,
            "name": op_id,
            "status": IN_PROGRESS,
            "startTime": utc_now(),
            "started": time.time(),
            "notBefore": time.time() + self.lro_seconds,
            "resourceId": resource_id,
            "subscription": req.subscription,
            "provider": provider,
            "location": location,
            "style": style,
            "apiVersion": req.api_version,
            "method": req.method,
        }
        self.store.put_operation(op)
        headers = self.monitor_headers(req.base_url, op)
        self.run(op_id, work, on_failure, failure=req.fail_operation)
        return ArmResponse(status, body, headers)

    def run(
        self,
        op_id: str,
        work: Work,
        on_failure: OnFailure | None,
        *,
        failure: dict[str, Any] | None = None,
    ) -> None:
        """Run ``work`` for an existing operation on a daemon thread."""
        done = self._done.setdefault(op_id, threading.Event())
        thread = threading.Thread(
            target=self._execute,
            args=(op_id, work, on_failure, failure, done),
            name=f"lro-{op_id[:8]}",
            daemon=True,
        )
        thread.start()

    def _execute(
        self,
        op_id: str,
        work: Work,
        on_failure: OnFailure | None,
        failure: dict[str, Any] | None,
        done: threading.Event,
    ) -> None:
        error: dict[str, Any] | None = None
        result: Any = None
        try:
            if failure is not None:
                error = failure
            else:
                result = work(op_id)
        except Abandoned:
            done.set()
            return
        except ArmError as err:
            error = err.error_body()
        except SandboxError as err:
            error = sandbox_error(err)
        except Exception as err:  # an emulator bug: report it, keep serving
            log.exception("operation %s failed unexpectedly", op_id)
            error = {"code": "InternalServerError", "message": f"{type(err).__name__}: {err}"}
        if error is not None and on_failure is not None:
            try:
                on_failure(error)
            except Exception:
                log.exception("operation %s: failure handler raised", op_id)
        self.finish(op_id, error=error, result=result)
        done.set()

    def finish(
        self, op_id: str, *, error: dict[str, Any] | None = None, result: Any = None
    ) -> None:
        with self.store.lock:
            op = self.store.get_operation(op_id)
            if op is None:
                return
            op["status"] = FAILED if error else SUCCEEDED
            op["endTime"] = utc_now()
            op["finished"] = time.time()
            if error:
                op["error"] = error
            if result is not None:
                op["result"] = result
            self.store.put_operation(op)
        self._estimates.pop(op_id, None)

    def set_estimate(self, op_id: str, seconds: float) -> None:
        """Let running work say how long it still needs (sets Retry-After)."""
        self._estimates[op_id] = seconds

    # reporting -------------------------------------------------------------------------

    def monitor_headers(self, base_url: str, op: dict[str, Any]) -> dict[str, str]:
        async_url, location_url = self.urls(base_url, op)
        headers = {"Location": location_url, "Retry-After": str(self.retry_after(op))}
        if op["style"] != "resources":
            headers["Azure-AsyncOperation"] = async_url
        return headers

    def urls(self, base_url: str, op: dict[str, Any]) -> tuple[str, str]:
        sub, loc, op_id, version = op["subscription"], op["location"], op["id"], op["apiVersion"]
        if op["style"] == "resources":
            url = f"{base_url}/subscriptions/{sub}/operationresults/{op_id}?api-version={version}"
            return url, url
        base = f"{base_url}/subscriptions/{sub}/providers/{op['provider']}/locations/{loc}"
        if op["style"] == "network":
            return (
                f"{base}/operations/{op_id}?api-version={version}",
                f"{base}/operationResults/{op_id}?api-version={version}",
            )
        kind = "capsOperations" if op["style"] == "gallery" else "operations"
        return (
            f"{base}/{kind}/{op_id}?api-version={version}",
            f"{base}/{kind}/{op_id}?monitor=true&api-version={version}",
        )

    def retry_after(self, op: dict[str, Any]) -> int:
        now = time.time()
        estimate = self._estimates.get(op["id"])
        if estimate is None:
            age = now - op.get("started", now)
            estimate = max(op.get("notBefore", now) - now, age / 2)
        return max(1, min(30, math.ceil(estimate)))

    def poll(self, op_id: str) -> dict[str, Any] | None:
        """The operation's state, waiting briefly if it is about to finish."""
        op = self.store.get_operation(op_id)
        if op is None:
            return None
        deadline = time.time() + self.poll_wait_seconds
        done = self._done.get(op_id)
        if op["status"] == IN_PROGRESS and done is not None and self._about_done(op):
            done.wait(max(0.0, deadline - time.time()))
            op = self.store.get_operation(op_id) or op
        if op["status"] != IN_PROGRESS:
            wait = op["notBefore"] - time.time()
            if 0 < wait <= max(0.0, deadline - time.time()):
                time.sleep(wait)
            elif wait > 0:
                return {**op, "status": IN_PROGRESS, "error": None}
        return op

    def _about_done(self, op: dict[str, Any]) -> bool:
        estimate = self._estimates.get(op["id"])
        return estimate is None or estimate <= self.poll_wait_seconds

    def recover(self, resumed: set[str]) -> list[dict[str, Any]]:
        """After a restart: fail operations whose work died with the old process."""
        lost = []
        for op in self.store.operations():
            if op["status"] == IN_PROGRESS and op["id"].lower() not in resumed:
                error = {
                    "code": "InternalOperationError",
                    "message": "The sandbox emulator restarted while this operation was running.",
                }
                self.finish(op["id"], error=error)
                lost.append(op)
        return lost
