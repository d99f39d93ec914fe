"""Fault injection, set per test at runtime through ``POST /_sandbox/faults``.

A rule matches requests by method (``*`` for any) and a regular expression searched in the
path (case-insensitive; empty matches everything) and fires ``count`` times (``null`` for
unlimited). Kinds:

- ``throttle``: answer 429 TooManyRequests with ``Retry-After: retry_after`` (default 1);
- ``error``: answer ``status`` (500 or 503, default 500), optionally with Retry-After;
- ``latency``: delay the request by ``seconds`` (then carry on, other rules still apply);
- ``lro_failed``: accept the long-running request, then end its operation Failed
  (``code``/``message`` optional) without doing the work;
- ``region_failure``: replication of any version into ``region`` fails (no method/path).

Rules are tried in the order they were added; the first response rule that matches wins.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import ArmError

KINDS = ("throttle", "error", "latency", "lro_failed", "region_failure")
_METHODS = ("*", "GET", "PUT", "PATCH", "POST", "DELETE", "HEAD")


@dataclass
class FaultRule:
    id: int
    kind: str
    method: str = "*"
    path: str = ""
    count: int | None = 1
    status: int = 500
    retry_after: int | None = None
    seconds: float = 0.0
    region: str = ""
    code: str = ""
    message: str = ""
    hits: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["remaining"] = None if self.count is None else self.count - self.hits
        return data

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def matches(self, method: str, path: str) -> bool:
        if self.exhausted or self.kind == "region_failure":
            return False
        if self.method not in ("*", method):
            return False
        return self._pattern is None or bool(self._pattern.search(path))


def _bad(message: str) -> ArmError:
    return ArmError(400, "InvalidFaultRule", message)


def parse_rule(data: Any, rule_id: int) -> FaultRule:
    """Validate one rule from the admin API."""
    if not isinstance(data, dict):
        raise _bad("each fault rule must be a JSON object")
    unknown = set(data) - {
        "kind", "method", "path", "count", "status", "retry_after", "seconds", "region", "code",
        "message",
    }  # fmt: skip
    if unknown:
        raise _bad(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise _bad(f"fault kind must be one of {', '.join(KINDS)}, not {kind!r}")
    method = str(data.get("method", "*")).upper()
    if method not in _METHODS:
        raise _bad(f"fault method must be one of {', '.join(_METHODS)}")
    count = data.get("count", 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise _bad("fault count must be a positive integer or null (unlimited)")
    path = str(data.get("path", ""))
    try:
        pattern = re.compile(path, re.IGNORECASE) if path else None
    except re.error as err:
        raise _bad(f"fault path is not a regular expression: {err}") from None
    rule = FaultRule(rule_id, kind, method, path, count, _pattern=pattern)
    if kind == "throttle":
        rule.status = 429
        rule.retry_after = _positive_int(data.get("retry_after", 1), "retry_after")
    elif kind == "error":
        rule.status = int(data.get("status", 500))
        if rule.status not in (500, 502, 503, 504):
            raise _bad("error faults answer 500, 502, 503 or 504")
        if data.get("retry_after") is not None:
            rule.retry_after = _positive_int(data["retry_after"], "retry_after")
    elif kind == "latency":
        seconds = data.get("seconds")
        if not isinstance(seconds, int | float) or not 0 < seconds <= 60:
            raise _bad("latency faults need seconds in (0, 60]")
        rule.seconds = float(seconds)
    elif kind == "region_failure":
        region = data.get("region")
        if not isinstance(region, str) or not regions.is_region(region):
            raise _bad(f"region_failure needs a known Azure region, not {region!r}")
        rule.region = regions.normalize(region)
    rule.code = str(data.get("code", ""))
    rule.message = str(data.get("message", ""))
    return rule


def _positive_int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"{key} must be an integer >= 1")
    return value


@dataclass
class FaultDecision:
    """What the matching rules ask of one request."""

    delay: float = 0.0
    respond: FaultRule | None = None
    fail_operation: FaultRule | None = None


class Faults:
    """The active rules; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, items: list[Any]) -> list[FaultRule]:
        with self._lock:
            parsed = [parse_rule(item, self._next_id + i) for i, item in enumerate(items)]
            self._next_id += len(parsed)
            self._rules.extend(parsed)
            return parsed

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(self, method: str, path: str) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.kind == "latency":
                    rule.hits += 1
                    decision.delay += rule.seconds
                elif rule.kind == "lro_failed" and method in ("PUT", "PATCH", "POST", "DELETE"):
                    if decision.fail_operation is None and decision.respond is None:
                        rule.hits += 1
                        decision.fail_operation = rule
                elif rule.kind in ("throttle", "error") and decision.respond is None:
                    rule.hits += 1
                    decision.respond = rule
            if decision.respond is not None and decision.fail_operation is not None:
                decision.fail_operation.hits -= 1  # the request never reaches its operation
                decision.fail_operation = None
        return decision

    def refund(self, rule: FaultRule) -> None:
        """Give back a use of ``rule`` that did not apply (an lro_failed rule that matched a
        request answered synchronously)."""
        with self._lock:
            rule.hits = max(0, rule.hits - 1)

    def region_fails(self, region: str) -> FaultRule | None:
        """Consume and return a region_failure rule for ``region``, if any."""
        wanted = regions.normalize(region)
        with self._lock:
            for rule in self._rules:
                if rule.kind == "region_failure" and rule.region == wanted and not rule.exhausted:
                    rule.hits += 1
                    return rule
        return None
