"""A case-insensitive route table over ARM path templates.

ARM paths are case-insensitive (the SDKs send ``resourcegroups`` for resource groups and
``resourceGroups`` elsewhere), so routes are matched with one compiled, case-insensitive
pattern per template. The template itself is what the request log counts by. A parameter
written ``{name:path}`` matches any number of segments (ARM's ``{scope}``, e.g. the Tags API's
``{scope}/providers/Microsoft.Resources/tags/default``); other parameters match one segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Callable[..., Any]
    family: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = ""
        pos = 0
        for match in _PARAM.finditer(self.template):
            regex += re.escape(self.template[pos : match.start()])
            segment = "(?:/[^/]+)*" if match.group(2) else "[^/]+"
            regex += f"(?P<{match.group(1)}>{segment})"
            pos = match.end()
        regex += re.escape(self.template[pos:])
        object.__setattr__(self, "pattern", re.compile(f"^{regex}/?$", re.IGNORECASE))


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


class Router:
    """Finds the route for (method, path); tells 404 (no such path) from 405 (wrong method)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Match | None, bool]:
        """Return (match, path_known)."""
        path_known = False
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            path_known = True
            if route.method == method:
                return Match(route, found.groupdict()), True
        return None, path_known
