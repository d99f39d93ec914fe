"""Shared plumbing of imageforge.azure: resource ids, JSON views of SDK models, ARM errors.

``arm_call(what)`` turns what the SDKs raise into imageforge's typed errors with one-line
messages that name the resource (``what``): 404 -> NotFoundError, anything else from ARM ->
AzureError with ARM's error code, connection failures -> AzureError naming the endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from imageforge.errors import AzureError, NotFoundError

_SPACE = re.compile(r"\s+")
_MAX_MESSAGE = 300


def one_line(text: object, limit: int = _MAX_MESSAGE) -> str:
    """``text`` collapsed onto one line and shortened."""
    line = _SPACE.sub(" ", str(text)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def as_json(model: Any) -> dict[str, Any]:
    """The REST JSON of an SDK model (the models are mappings in ARM's own shape)."""
    if model is None:
        return {}
    if hasattr(model, "as_dict"):
        return model.as_dict()  # type: ignore[no-any-return]
    return dict(model)


def error_code(err: Any) -> str:
    """ARM's error code of an HttpResponseError ('' when there is none)."""
    inner = getattr(err, "error", None)
    code = getattr(inner, "code", None)
    if code:
        return str(code)
    response = getattr(err, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # noqa: BLE001 - a body that is not JSON has no code
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code") or "")
    return ""


def error_message(err: Any) -> str:
    """ARM's error message of an HttpResponseError, on one line."""
    inner = getattr(err, "error", None)
    message = getattr(inner, "message", None)
    if message:
        return one_line(message)
    text = str(getattr(err, "message", "") or err)
    # azure-core prefixes "(Code) message" and appends "Code: ...\nMessage: ..." lines
    first = text.strip().splitlines()[0] if text.strip() else ""
    return one_line(first)


def is_not_found(err: Any) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(err, ResourceNotFoundError) or getattr(err, "status_code", None) == 404


def _release(err: Any) -> None:
    """Close the HTTP response an SDK error holds, so its connection is not left open until
    the error is garbage-collected."""
    response = getattr(err, "response", None)
    closer = getattr(response, "close", None)
    if callable(closer):
        try:
            closer()
        except Exception:  # noqa: BLE001 - best effort
            pass


@contextmanager
def arm_call(what: str, *, where: str = "Azure") -> Iterator[None]:
    """Run ARM calls about ``what``; translate SDK failures into imageforge errors.

    The imageforge error is raised outside the ``except`` block, so it does not chain the SDK
    error (and the HTTP response that error holds).
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    error: Exception | None = None
    try:
        yield
    except ClientAuthenticationError as err:
        _release(err)
        error = AzureError(f"{what}: authentication to {where} failed: {error_message(err)}")
    except HttpResponseError as err:
        _release(err)
        code = error_code(err)
        message = error_message(err)
        if is_not_found(err):
            error = NotFoundError(f"{what}: not found ({code or 404}): {message}")
        else:
            status = getattr(err, "status_code", None)
            label = code or (f"HTTP {status}" if status else "error")
            error = AzureError(f"{what}: {label}: {message}")
    except (ServiceRequestError, ServiceResponseError) as err:
        error = AzureError(f"{what}: cannot reach {where}: {one_line(err)}")
    if error is not None:
        raise error


def parse_version_id(value: str) -> dict[str, str] | None:
    """The parts of a gallery image version id, or None when ``value`` is not one."""
    match = re.match(
        r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
        r"Microsoft\.Compute/galleries/(?P<gallery>[^/]+)/images/(?P<image>[^/]+)/"
        r"versions/(?P<version>[^/]+)/?$",
        value.strip(),
        re.IGNORECASE,
    )
    return match.groupdict() if match else None
