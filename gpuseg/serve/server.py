"""Running the service: uvicorn with one worker, SIGHUP to reload, SIGTERM to stop gracefully.

One process holds the model and the batcher, so uvicorn runs one worker on a
socket bound beforehand (a busy port is a one-line error before anything
starts). SIGHUP reloads the model (a handler on the event loop). SIGTERM and
SIGINT are uvicorn's graceful shutdown: stop accepting, let the requests in
flight get their answers (the batcher drains in the app's lifespan), and stop
waiting after ``shutdown_timeout`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

from ..errors import GpusegError
from .app import reload_model
from .holder import ModelHolder

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises
    ------
    GpusegError
        When the address cannot be bound (in use, not this machine's), naming
        ``--host`` and ``--port``.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise GpusegError(f"cannot listen on {host}:{port} ({exc}); check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise GpusegError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
                          "--port or --host") from None
    sock.set_inheritable(True)
    return sock


def run_server(app: Any, sock: socket.socket, holder: ModelHolder, *, access_log: bool,
               shutdown_timeout: float, log_level: str) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, then shut down gracefully.

    Returns normally after SIGTERM (the command exits 0). After SIGINT,
    KeyboardInterrupt is raised once the shutdown is done, as for the other
    commands.
    """
    import uvicorn

    # uvicorn annotates the timeout as int; it hands it to asyncio.timeout, which takes seconds.
    config = uvicorn.Config(app, access_log=access_log, log_level=log_level, lifespan="on",
                            timeout_graceful_shutdown=shutdown_timeout)  # type: ignore[arg-type]
    server = uvicorn.Server(config)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task] = set()

        def reload_on_hangup() -> None:
            task = loop.create_task(reload_model(holder))
            reloads.add(task)  # the loop keeps only a weak reference to its tasks
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload_on_hangup)
        try:
            await server.serve(sockets=[sock])
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    # A batch's matrix products are small: waking BLAS threads for them costs more than the
    # product (measured: 11 ms instead of under 1 ms for 64 shoppers on 2 busy cores).
    with _sigterm_ends_quietly(), threadpool_limits(1, user_api="blas"):
        _event_loop_runner()(serve())


def _event_loop_runner() -> Any:
    """uvloop's ``run`` where it is installed (as uvicorn prefers it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


@contextmanager
def _sigterm_ends_quietly() -> Iterator[None]:
    """Let SIGTERM end the service with exit code 0.

    uvicorn catches SIGTERM for its graceful shutdown, then raises it again to
    the handler it found; the command line's handler would turn that into exit
    code 143 (interrupted work), which is wrong for a service that stopped as
    asked. Here that handler only notes the signal.
    """
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
