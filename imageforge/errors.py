"""The errors imageforge raises for expected failures.

Every user-facing failure is one of these, with a one-line message that names the file, key,
image, version or resource at fault. tasks.py turns them into ``Exit(message, code=1)``; no
traceback is shown for them.

    ImageforgeError
    ├── ConfigError          an image definition or site setting is wrong (file + key)
    ├── RenderError          a template failed to render (template + line)
    ├── ValidationError      rendered HCL failed a check (file + check)
    ├── VersionError         a version string or scheme is wrong
    ├── ToolError            an external tool is missing or failed (names its log file)
    │   └── PackerError
    ├── AzureError           an ARM call failed (names the resource)
    │   ├── NotFoundError
    │   └── GateError        promote refused: the version does not meet the gate
    ├── SandboxError         the sandbox cannot do what was asked (and says why)
    └── VerifyError          a Testinfra run could not be carried out
"""

from __future__ import annotations


class ImageforgeError(Exception):
    """Base of every expected failure. ``str(err)`` is the one-line message for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ImageforgeError):
    """An image definition or a site setting is invalid."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(where + message)
        self.path = path
        self.key = key


class RenderError(ImageforgeError):
    """A template could not be rendered."""


class ValidationError(ImageforgeError):
    """Rendered output failed one of the validation checks."""


class VersionError(ImageforgeError):
    """A gallery image version string or version scheme is invalid."""


class ToolError(ImageforgeError):
    """An external program is missing, timed out or failed."""

    def __init__(self, message: str, *, log: str | None = None) -> None:
        super().__init__(message + (f" (log: {log})" if log else ""))
        self.log = log


class PackerError(ToolError):
    """Packer is missing, or `packer validate|fmt|build` failed."""


class AzureError(ImageforgeError):
    """A call to Azure Resource Manager failed."""


class NotFoundError(AzureError):
    """A gallery, image definition, version or resource group does not exist."""


class GateError(AzureError):
    """Promotion was refused because the version does not meet the promotion gate."""


class SandboxError(ImageforgeError):
    """The sandbox target cannot do what was asked."""


class VerifyError(ImageforgeError):
    """A Testinfra suite could not be run (not: the suite ran and tests failed)."""
