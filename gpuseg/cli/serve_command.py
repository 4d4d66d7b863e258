"""``gpuseg serve``: a saved model behind an HTTP API (the optional ``[serve]`` extra)."""
from __future__ import annotations

import argparse
import importlib.util
import logging
from collections.abc import Callable

from ..errors import GpusegError
from ..serve.settings import ServeSettings
from .exit_codes import EXIT_OK
from .options import CommandFactory, add_backend

#: The libraries of the [serve] extra, by the name they import as.
SERVE_LIBRARIES = ("fastapi", "uvicorn")


def require_serve_extra() -> None:
    """Raise a one-line GpusegError naming the install command when the extra is missing."""
    missing = [name for name in SERVE_LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise GpusegError(f"gpuseg serve needs {', '.join(missing)}: pip install 'gpuseg[serve]'")


def _at_least(kind: type, low: float, *, strictly: bool) -> Callable[[str], object]:
    """An argparse type: a number of ``kind`` above ``low`` (or equal, unless ``strictly``)."""
    def read(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number (got {text!r})") from None
        if value < low or (strictly and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strictly else '>='} {low} "
                                             f"(got {text})")
        return value

    return read


def _cmd_serve(args: argparse.Namespace) -> int:
    require_serve_extra()
    from ..registry import get_backend
    from ..serve.app import create_app
    from ..serve.holder import ModelHolder, load_served_model
    from ..serve.server import bind, run_server

    backend = get_backend(args.backend)
    served = load_served_model(args.model)
    holder = ModelHolder(args.model, served)
    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                             max_body_bytes=int(args.max_body_mb * (1 << 20)))
    app = create_app(holder, backend, settings)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    if not args.quiet:
        logging.getLogger("gpuseg.serve").setLevel(logging.INFO)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"gpuseg serve: model {served.model_id} (K={served.model.k}) from {args.model} on "
          f"http://{shown_host}:{port} ({backend.name} backend); POST /v1/assign, GET /v1/model, "
          "POST /v1/reload or SIGHUP to reload, SIGTERM to stop", flush=True)
    run_server(app, sock, holder, access_log=args.access_log,
               shutdown_timeout=args.shutdown_timeout,
               log_level="warning" if args.quiet else "info")
    print("gpuseg serve: stopped", flush=True)
    return EXIT_OK


def register(command: CommandFactory) -> None:
    """Add ``serve`` to the parser."""
    p = command(
        "serve", "assign shoppers over HTTP with a saved model (JSON in, JSON out)",
        """
        gpuseg serve --model runs/2026-11                        # http://127.0.0.1:8000
        gpuseg serve --model runs/current --port 8080 --max-batch 512 --max-wait-ms 2
        curl -s localhost:8000/v1/model
        curl -s -X POST localhost:8000/v1/assign -H 'content-type: application/json' -d @shoppers.json
        kill -HUP <pid>                       # reload runs/current after a new run replaced it
        """,
        _cmd_serve)
    p.add_argument("--model", required=True,
                   help="run directory (or its model/ folder) to serve; read again on reload")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000,
                   help="port to listen on; 0 picks a free one (default: 8000)")
    add_backend(p)
    defaults = ServeSettings()
    p.add_argument("--max-batch", type=_at_least(int, 0, strictly=True), metavar="N",
                   default=defaults.max_batch,
                   help="shoppers computed together at most; a larger request runs alone "
                        f"(default: {defaults.max_batch})")
    p.add_argument("--max-wait-ms", type=_at_least(float, 0, strictly=False), metavar="M",
                   default=defaults.max_wait_ms,
                   help="how long the oldest queued request waits for others "
                        f"(default: {defaults.max_wait_ms:g})")
    p.add_argument("--max-body-mb", type=_at_least(float, 0, strictly=True), metavar="MB",
                   default=defaults.max_body_bytes / (1 << 20),
                   help="larger request bodies are refused with 413 "
                        f"(default: {defaults.max_body_bytes >> 20})")
    p.add_argument("--shutdown-timeout", type=_at_least(float, 0, strictly=True), default=8.0, metavar="S",
                   help="on SIGTERM, seconds to let requests in flight finish (default: 8)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false",
                   help="do not log each request (uvicorn's access log)")
