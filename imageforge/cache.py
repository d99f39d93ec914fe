"""Where imageforge keeps caches that only make it faster (never change what it does).

``$IMAGEFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/imageforge``, else ``~/.cache/imageforge``.
Entries are keyed by the content they were made from, so a stale entry cannot be hit; a cache
that cannot be written is simply not used.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path | None:
    """The folder for one kind of cache entry, created on demand; None if it cannot be."""
    base = os.environ.get("IMAGEFORGE_CACHE_DIR")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "imageforge"
    path = root / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None
