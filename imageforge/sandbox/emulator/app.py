"""The Starlette application: authentication, admin API, faults, api-versions, dispatch.

Every request needs ``Authorization: Bearer <token>`` (any non-empty token), else 401
AuthenticationFailed. ``/_sandbox/...`` goes to the admin API. ARM requests are routed
(case-insensitively), pass fault injection, have their api-version checked, then run their
handler on a worker thread (handlers block on SQLite and the machine backend). Everything
that fails leaves as ARM's error envelope; every ARM request is counted in the stats.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from imageforge.sandbox.emulator import admin
from imageforge.sandbox.emulator.apiversions import check_api_version
from imageforge.sandbox.emulator.armerrors import (
    ArmError,
    bad_request_body,
    method_not_allowed,
    unknown_route,
)
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.faults import FaultDecision, FaultRule
from imageforge.sandbox.emulator.handlers.routes import router
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse

log = logging.getLogger("imageforge.sandbox.emulator")
METHODS = ["GET", "PUT", "PATCH", "POST", "DELETE", "HEAD"]


def _auth_error(message: str) -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        message,
        headers={
            "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
            'common", error="invalid_token", error_description="' + message + '"'
        },
    )


def _check_auth(request: Request) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise _auth_error("Authentication failed. The 'Authorization' header is missing.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _auth_error(
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
        )


def _to_response(result: ArmResponse, method: str) -> Response:
    headers = {"x-ms-request-id": str(uuid.uuid4()), **result.headers}
    if result.body is None or method == "HEAD" or result.status == 204:
        return Response(status_code=result.status, headers=headers)
    content = json.dumps(result.body, separators=(",", ":"))
    return Response(content, result.status, headers, media_type="application/json; charset=utf-8")


def _error_response(err: ArmError, method: str) -> Response:
    return _to_response(ArmResponse(err.status, err.envelope(), dict(err.headers)), method)


def _fault_error(rule: FaultRule) -> ArmError:
    headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after else {}
    if rule.kind == "throttle":
        return ArmError(
            429,
            rule.code or "TooManyRequests",
            rule.message or "The request is being throttled (injected fault); retry later.",
            headers=headers,
        )
    codes = {
        500: "InternalServerError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }
    return ArmError(
        rule.status,
        rule.code or codes[rule.status],
        rule.message or "The server encountered an error (injected fault).",
        headers=headers,
    )


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request_body(
            "The request content was invalid and could not be deserialized."
        ) from None


def create_app(em: Emulator) -> Starlette:
    """The ASGI app of one emulator."""
    table = router()

    def read_resource(resource_id: str, api_version: str, base_url: str) -> ArmResponse:
        match, _ = table.match("GET", resource_id)
        if match is None:
            raise ArmError(404, "ResourceNotFound", f"The resource '{resource_id}' was not found.")
        return match.route.handler(
            em,
            ArmRequest(
                method="GET",
                path=resource_id,
                params=match.params,
                query={"api-version": api_version},
                body=None,
                base_url=base_url,
                api_version=api_version,
                template=match.route.template,
            ),
        )

    em.read_resource = read_resource

    async def endpoint(request: Request) -> Response:
        method = request.method
        path = request.url.path
        try:
            _check_auth(request)
        except ArmError as err:
            return _error_response(err, method)
        if path.lower().startswith("/_sandbox/"):
            try:
                body = await _body(request)
                result = await run_in_threadpool(admin.handle, em, method, path, body)
                return _to_response(result, method)
            except ArmError as err:
                return _error_response(err, method)
        started = time.monotonic()
        template, fault, response = "(unknown)", None, None
        decision = FaultDecision()
        try:
            match, known = table.match(method, path)
            if match is None:
                raise method_not_allowed(method, path) if known else unknown_route(path)
            template = match.route.template
            decision = em.faults.decide(method, path)
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.respond is not None:
                fault = decision.respond.kind
                raise _fault_error(decision.respond)
            query = {k.lower(): v for k, v in request.query_params.items()}
            api_version = check_api_version(
                match.route.family, query.get("api-version"), location=None
            )
            fail_operation = None
            if decision.fail_operation is not None:
                fault = "lro_failed"
                fail_operation = {
                    "code": decision.fail_operation.code or "InternalOperationError",
                    "message": decision.fail_operation.message
                    or "The operation failed (injected fault).",
                }
            req = ArmRequest(
                method=method,
                path=path,
                params=match.params,
                query=query,
                body=await _body(request) if method in ("PUT", "PATCH", "POST") else None,
                base_url=f"{request.url.scheme}://{request.url.netloc}",
                api_version=api_version,
                template=template,
                fail_operation=fail_operation,
            )
            result = await run_in_threadpool(match.route.handler, em, req)
            if decision.fail_operation is not None and "Location" not in result.headers:
                em.faults.refund(decision.fail_operation)  # not a long-running operation
                fault = None
            response = _to_response(result, method)
        except ArmError as err:
            if decision.fail_operation is not None:
                em.faults.refund(decision.fail_operation)  # refused before any operation began
                fault = None
            response = _error_response(err, method)
        except Exception:
            log.exception("%s %s failed", method, path)
            response = _error_response(
                ArmError(500, "InternalServerError", "The sandbox emulator failed; see its log."),
                method,
            )
        em.stats.record(
            method, path, template, response.status_code, time.monotonic() - started, fault
        )
        return response

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])
