"""ARM's error envelope and the error codes the emulator answers with.

Every failure leaves the emulator as ``{"error": {"code", "message", "target"?, "details"?}}``
with the HTTP status Azure uses for that code. Handlers raise ``ArmError``; the app turns it
into the response.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error answer: status, code, message and optional target and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = headers or {}

    def error_body(self) -> dict[str, Any]:
        """The inner ``error`` object (also used for failed operations)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            body["target"] = self.target
        if self.details:
            body["details"] = self.details
        return body

    def envelope(self) -> dict[str, Any]:
        return {"error": self.error_body()}


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def bad_request_body(message: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent", message)


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(type_name: str, name: str, group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        "Can not perform requested operation on nested resource. "
        f"Parent resource '{parent}' not found.",
    )


def cannot_delete(message: str) -> ArmError:
    return ArmError(409, "CannotDeleteResource", message)


def property_change_not_allowed(prop: str) -> ArmError:
    return ArmError(
        409,
        "PropertyChangeNotAllowed",
        f"Changing property '{prop}' is not allowed.",
        target=prop,
    )


def operation_in_progress(what: str) -> ArmError:
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Another operation on {what} is in progress; retry after it has completed.",
    )


def not_allowed(message: str) -> ArmError:
    return ArmError(409, "OperationNotAllowed", message)


def unknown_route(path: str) -> ArmError:
    return ArmError(
        404,
        "InvalidResourceType",
        f"The resource type for path '{path}' could not be found; the sandbox does not serve it.",
    )


def method_not_allowed(method: str, path: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested method '{method}' is not allowed for '{path}'."
    )
