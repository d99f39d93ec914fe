"""Several images at once: how many (``--parallel``, the sandbox's cores), and running their
builds side by side so that one image's failure leaves the others building.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from imageforge import process
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError
from imageforge.kinds import Target
from imageforge.pipeline.context import say

Outcome = TypeVar("Outcome")


def parse_parallel(requested: str | int | None) -> int | None:
    """``--parallel N`` as a positive number, or None when not given."""
    if requested is None or requested == "":
        return None
    text = str(requested).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--parallel: {requested!r} is not a positive number of images")
    return int(text)


def parallel_workers(count: int, requested: str | int | None, target: Target) -> int:
    """How many images build at once: ``--parallel N``, else all of them; on the sandbox, whose
    VMs run on this machine, at most one per core (said when it is fewer than asked)."""
    wanted = parse_parallel(requested)
    workers = max(1, min(count if wanted is None else wanted, count))
    if target == "sandbox":
        cores = os.cpu_count() or 1
        if workers > cores:
            say(
                f"note: building {cores} images at once, not {workers}: the sandbox runs its "
                f"VMs and Packer on this machine's {cores} cores"
            )
            workers = cores
    if workers > 1:
        say(f"building {count} images, {workers} at once (each line names its image)")
    return workers


def run_all(
    images: Sequence[ImageDefinition],
    one: Callable[[ImageDefinition], Outcome],
    workers: int,
) -> list[Outcome]:
    """Build the images, ``workers`` at a time; outcomes in the images' order. One image's
    failure does not stop the others (build_one reports it in its outcome); a Ctrl-C or SIGTERM
    interrupts every Packer still running, waits for the builds to clean up, and re-raises."""
    if workers == 1:
        return [one(image) for image in images]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imageforge-build") as pool:
        futures = [pool.submit(one, image) for image in images]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            process.interrupt_all()
            for future in futures:
                with contextlib.suppress(BaseException):
                    future.result()
            raise
