"""Wall time per phase of a build, summed over images, and the table a build prints."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

PHASES = (
    "render",
    "validate",
    "base",
    "reserve",
    "build VM",
    "packer",
    "capture/publish",
    "test VM",
    "testinfra",
    "replicate",
    "smoke",
    "promote",
)


@dataclass
class Timings:
    """Wall time per phase, summed over images, in the order of PHASES."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    @contextlib.contextmanager
    def around(self, name: str, manager: AbstractContextManager[T]) -> Iterator[T]:
        """Enter and exit ``manager`` counting only its own set-up and tear-down as ``name``."""
        started = time.perf_counter()
        value = manager.__enter__()
        self.add(name, time.perf_counter() - started)
        try:
            yield value
        except BaseException:
            started = time.perf_counter()
            try:
                suppressed = manager.__exit__(*sys.exc_info())
            finally:
                self.add(name, time.perf_counter() - started)
            if not suppressed:
                raise
        else:
            started = time.perf_counter()
            try:
                manager.__exit__(None, None, None)
            finally:
                self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total(self) -> float:
        return sum(self.seconds.values())

    def table(self) -> str:
        width = max(len(p) for p in PHASES)
        total = self.total() or 1.0
        lines = [f"{'phase'.ljust(width)}  {'seconds':>9}  {'share':>6}"]
        for name in PHASES:
            if name in self.seconds:
                sec = self.seconds[name]
                lines.append(f"{name.ljust(width)}  {sec:9.2f}  {sec / total:6.1%}")
        lines.append(f"{'total'.ljust(width)}  {self.total():9.2f}")
        return "\n".join(lines)
