"""Typed access to parsed HCL mappings, for reading image definitions.

``KeyReader`` wraps one mapping python-hcl2 produced; each accessor checks a key's type (and
range or choices) and every error is a ConfigError naming the file and the key path
(``target_regions[1].replicas``), so a mistake is one line. ``done`` refuses keys nobody read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imageforge.errors import ConfigError


class KeyReader:
    """Typed access to one parsed HCL mapping; every error names file and key path."""

    def __init__(self, data: Mapping[str, Any], path: str, prefix: str = "") -> None:
        self.data = data
        self.path = path
        self.prefix = prefix
        self.seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=self._key(key))

    def raw(self, key: str, default: Any = ...) -> Any:
        self.seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self.error(key, "required key is missing")
            return default
        return self.data[key]

    def text(self, key: str, default: Any = ..., choices: tuple[str, ...] = ()) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or (not value.strip() and default is ...):
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        self._no_template_action(key, value)
        return value

    def _no_template_action(self, key: str, value: str) -> None:
        # Packer runs its Go template engine over most builder and provisioner options after
        # HCL has evaluated them, so no HCL escape can keep "{{" literal: refuse it here.
        if "{{" in value:
            raise self.error(key, f"{value!r}: '{{{{' would be read as a Packer template action")

    def number(self, key: str, low: int, high: int) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise self.error(key, f"{value} is out of range {low}..{high}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A bool (HCL ``true``/``false``); a string such as ``"true"`` is refused."""
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.raw(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"expected a list of non-empty strings, got {value!r}")
        for index, item in enumerate(value):
            self._no_template_action(f"{key}[{index}]", item)
        return tuple(value)

    def obj(self, key: str) -> KeyReader:
        value = self.raw(key)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            value = value[0]  # python-hcl2 renders `key { ... }` blocks as one-item lists
        if not isinstance(value, dict):
            raise self.error(key, f"expected an object {{ ... }}, got {value!r}")
        return KeyReader(value, self.path, f"{self._key(key)}.")

    def objs(self, key: str) -> list[KeyReader]:
        value = self.raw(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "expected a non-empty list of objects")
        readers = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"expected an object, got {item!r}")
            readers.append(KeyReader(item, self.path, f"{self._key(key)}[{index}]."))
        return readers

    def done(self) -> None:
        """Reject keys nobody read: a typo must not be silently ignored."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], "unknown key")
