"""The request log and counters behind ``GET /_sandbox/stats``.

Counts ARM requests (not admin ones) in total, by method, by route template (``PUT
/subscriptions/{subscriptionId}/...``), by status, and how many were throttled (429) or failed
(any other status >= 400). The log keeps the most recent requests: method, path, template,
status, duration and the fault that fired. Headers and bodies are never logged.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

LOG_SIZE = 2000


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._since = time.time()
            self._total = 0
            self._throttled = 0
            self._failed = 0
            self._by_method: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._by_route: dict[str, Counter[str]] = {}
            self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def record(
        self,
        method: str,
        path: str,
        template: str,
        status: int,
        seconds: float,
        fault: str | None = None,
    ) -> None:
        route = f"{method} {template}"
        with self._lock:
            self._total += 1
            self._by_method[method] += 1
            self._by_status[str(status)] += 1
            counter = self._by_route.setdefault(route, Counter())
            counter["count"] += 1
            if status == 429:
                self._throttled += 1
                counter["throttled"] += 1
            elif status >= 400:
                self._failed += 1
                counter["failed"] += 1
            entry = {
                "time": time.time(),
                "method": method,
                "path": path,
                "route": template,
                "status": status,
                "ms": round(seconds * 1000, 1),
            }
            if fault:
                entry["fault"] = fault
            self._log.append(entry)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "since": self._since,
                "total": self._total,
                "throttled": self._throttled,
                "failed": self._failed,
                "by_method": dict(self._by_method),
                "by_status": dict(self._by_status),
                "by_route": {
                    route: {"count": c["count"], "throttled": c["throttled"], "failed": c["failed"]}
                    for route, c in self._by_route.items()
                },
                "log": list(self._log),
            }
