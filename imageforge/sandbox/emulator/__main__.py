"""``python -m imageforge.sandbox.emulator --state-dir DIR [...]``: run the ARM emulator."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from imageforge.errors import ImageforgeError
from imageforge.sandbox.emulator.config import BACKENDS, EmulatorConfig
from imageforge.sandbox.emulator.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imageforge.sandbox.emulator")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backend", choices=BACKENDS, default="inert")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--replication-seconds", type=float, default=0.0)
    parser.add_argument("--lro-seconds", type=float, default=0.0)
    parser.add_argument("--page-size", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = EmulatorConfig(
        state_dir=args.state_dir.expanduser().resolve(),
        host=args.host,
        port=args.port,
        backend=args.backend,
        cache_dir=args.cache_dir,
        replication_seconds=args.replication_seconds,
        lro_seconds=args.lro_seconds,
        page_size=args.page_size,
    )
    try:
        serve(config)
    except (ImageforgeError, OSError) as err:
        logging.getLogger("imageforge.sandbox.emulator").error("cannot start: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
