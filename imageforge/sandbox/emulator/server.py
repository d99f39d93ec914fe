"""Run one emulator: certificates, state, backend, resumed work, then uvicorn over HTTPS.

The listening socket is bound before uvicorn starts, so with ``port=0`` the kernel picks a
free port and nothing can take it in between; the chosen address is written to
``<state>/emulator.json`` (pid, url, CA path) for whoever started the process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from pathlib import Path

from imageforge.sandbox.emulator.backends import make_backend
from imageforge.sandbox.emulator.certs import ensure_certificates
from imageforge.sandbox.emulator.config import EmulatorConfig
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers.restart import resume_interrupted

log = logging.getLogger("imageforge.sandbox.emulator")
RUNTIME_FILE = "emulator.json"


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def runtime_path(state_dir: Path) -> Path:
    return state_dir / RUNTIME_FILE


def serve(config: EmulatorConfig) -> None:
    """Serve until SIGTERM/SIGINT."""
    # Lazy: uvicorn and Starlette (app imports it) cost a noticeable start-up time, which the
    # importers of runtime_path (harness, control) should not pay.
    import uvicorn

    from imageforge.sandbox.emulator.app import create_app

    config.state_dir.mkdir(parents=True, exist_ok=True)
    tls = ensure_certificates(config.tls_dir)
    backend = make_backend(config.backend, config.state_dir, config.cache_dir)
    emulator = Emulator(config, backend)
    resume_interrupted(emulator)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY. Without it, a response's headers and body go
    # out as two small TLS records, the second held back by Nagle's algorithm until the
    # client's delayed ACK of the first: 40 ms on every request instead of about 1 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((config.host, config.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    url = f"https://{host}:{port}"
    runtime = runtime_path(config.state_dir)
    tmp = runtime.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": os.getpid(), "url": url, "port": port, "caPath": str(tls.ca_cert)})
    )
    os.replace(tmp, runtime)
    log.info("sandbox ARM emulator listening on %s (backend %s)", url, config.backend)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(emulator),
            ssl_certfile=str(tls.server_cert),
            ssl_keyfile=str(tls.server_key),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Idle keep-alive TLS connections of still-living clients would hold a graceful
            # shutdown for the whole timeout; a second is plenty for in-flight requests.
            timeout_graceful_shutdown=1,
        )
    )
    # uvicorn re-raises the signal that stopped it; make that an exit that runs `finally`.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        emulator.shutdown()
        try:
            if json.loads(runtime.read_text()).get("pid") == os.getpid():
                runtime.unlink()
        except (OSError, ValueError):
            pass
        log.info("sandbox ARM emulator stopped")
