"""The one place HCL is read (python-hcl2 8.x), for reading values only.

Hand-written HCL is never round-tripped through python-hcl2: comments and layout would be lost.
Parse errors become ConfigError naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imageforge.errors import ConfigError


def _options() -> Any:
    from hcl2 import SerializationOptions

    return SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )


def loads(text: str, *, path: str = "<string>") -> dict[str, Any]:
    """Parse HCL text into plain Python values; errors name ``path`` and the line."""
    import hcl2
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        data = hcl2.loads(text, serialization_options=_options())
    except UnexpectedInput as exc:
        raise ConfigError(
            f"line {exc.line}, column {exc.column}: malformed HCL", path=path
        ) from None
    except (LarkError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"malformed HCL: {first}", path=path) from None
    if not isinstance(data, dict):
        raise ConfigError("expected HCL attribute assignments", path=path)
    return data


def load(path: Path) -> dict[str, Any]:
    """Read and parse one HCL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    return loads(text, path=str(path))
