"""A case-insensitive route table over ARM path templates, and the routes of a CRUD type.

ARM paths are case-insensitive (the SDKs send ``resourcegroups`` for resource groups and
``resourceGroups`` elsewhere), so routes are matched with one compiled, case-insensitive
pattern per template. The template itself is what the request log counts by. A parameter
written ``{name:path}`` matches any number of segments (ARM's ``{scope}``, e.g. the Tags API's
``{scope}/providers/Microsoft.Resources/tags/default``); other parameters match one segment.

Most ARM resource types are served the same way: ``GET`` of their collection lists them, and
``PUT``/``GET``/``DELETE`` (some ``PATCH``) of ``collection/{name}`` serve one; ``crud_routes``
makes those routes from a ``Crud`` of handlers.
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


@dataclass(frozen=True)
class Crud:
    """The handlers of one ARM resource type's collection and items (PATCH where it has one)."""

    list_all: Callable[..., Any]
    put: Callable[..., Any]
    get: Callable[..., Any]
    delete: Callable[..., Any]
    patch: Callable[..., Any] | None = None


def crud_routes(
    family: str, collection: str, param: str, ops: Crud, *, also_listed_at: str | None = None
) -> list[Route]:
    """``GET collection`` (and ``GET also_listed_at``, a wider scope's collection) lists the
    type; ``PUT``/``PATCH``/``GET``/``DELETE collection/{param}`` serve one resource."""
    item = f"{collection}/{{{param}}}"
    lists = [collection] if also_listed_at is None else [also_listed_at, collection]
    routes = [Route("GET", path, ops.list_all, family) for path in lists]
    routes.append(Route("PUT", item, ops.put, family))
    if ops.patch is not None:
        routes.append(Route("PATCH", item, ops.patch, family))
    routes += [Route("GET", item, ops.get, family), Route("DELETE", item, ops.delete, family)]
    return routes
