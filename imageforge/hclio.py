"""The one place HCL is read (python-hcl2 8.x), for reading values only.

Hand-written HCL is never round-tripped through python-hcl2: comments and layout would be lost.
Parse errors become ConfigError naming the file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from imageforge.cache import cache_dir
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
    """Read and parse one HCL file (the parse is cached by content: see imageforge.cache)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    cached = _cache_file(text)
    if cached is not None:
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
    data = loads(text, path=str(path))
    if cached is not None:
        _write_cache(cached, data)
    return data


def _cache_file(text: str) -> Path | None:
    """Where the parse of ``text`` is cached: a JSON file named by the content's digest.

    Parsing is python-hcl2's slowest part in a fresh process (loading its parser); a parse
    depends only on the text and the python-hcl2 version, both in the key.
    """
    from importlib.metadata import PackageNotFoundError, version

    folder = cache_dir("hcl")
    if folder is None:
        return None
    try:
        parser = version("python-hcl2")
    except PackageNotFoundError:
        parser = "unknown"
    digest = hashlib.sha256(f"{parser}\0{text}".encode()).hexdigest()
    return folder / f"{digest}.json"


def _write_cache(target: Path, data: dict[str, Any]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, target)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
