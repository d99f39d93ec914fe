"""The request and response the handlers see (independent of Starlette)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArmRequest:
    """One ARM call, parsed: route parameters, query (lower-case keys), JSON body."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    base_url: str
    api_version: str
    template: str = ""
    #: An injected "this long-running operation ends Failed" fault, if one matched.
    fail_operation: dict[str, Any] | None = None

    def param(self, name: str) -> str:
        return self.params[name]

    @property
    def subscription(self) -> str:
        return self.params["subscriptionId"]


@dataclass
class ArmResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
