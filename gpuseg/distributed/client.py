"""The Dask cluster of a run: join a running scheduler or start a local cluster, then close it.

``--scheduler ADDRESS`` joins a cluster someone started (``dask scheduler`` and
``dask worker ADDRESS``, or ``dask cuda worker ADDRESS`` per GPU machine);
``--workers N`` starts a local one for the run and closes it afterwards. An
address that is malformed, unreachable or not a scheduler is a one-line user
error within about :data:`CONNECT_TIMEOUT_S` seconds (:func:`check_scheduler`),
naming the address. Worker failures the run
cannot recover from (a worker killed again and again while running the same
task, which is what running out of memory looks like) become a
:class:`~gpuseg.errors.ResourceLimitError` naming ``--partitions``.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import GpusegError, ResourceLimitError

if TYPE_CHECKING:
    from ..config import PipelineConfig
    from .engine import DaskEngine

log = logging.getLogger(__name__)

#: Seconds to wait for a scheduler to answer before giving up on its address.
CONNECT_TIMEOUT_S = 5
#: Transports that run over TCP, which a plain socket can probe first.
_TCP_SCHEMES = ("tcp", "tls", "ws", "wss")


@dataclass(frozen=True)
class ClusterInfo:
    """Where a run computed, for metrics.json.

    Attributes
    ----------
    scheduler : str
        The scheduler's address.
    workers : int
        Workers when the run started.
    started : bool
        Whether gpuseg started the cluster (``--workers``) or joined one (``--scheduler``).
    threads_per_worker : tuple of int
        Threads of each worker.
    memory_limit : tuple of int
        Memory limit of each worker in bytes (0: none).
    """

    scheduler: str
    workers: int
    started: bool
    threads_per_worker: tuple[int, ...]
    memory_limit: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler, "workers": self.workers, "started": self.started,
                "threads_per_worker": list(self.threads_per_worker),
                "memory_limit": list(self.memory_limit)}


@contextmanager
def dask_client(config: PipelineConfig, engine: DaskEngine) -> Iterator[tuple[Any, ClusterInfo]]:
    """A connected ``distributed.Client`` and what it is connected to; closed on exit.

    Raises
    ------
    GpusegError
        The address at ``config.scheduler`` is malformed or is not a Dask
        scheduler that answers (:func:`check_scheduler`), or it has no workers.
    """
    if config.scheduler is not None:
        check_scheduler(config.scheduler)
        from distributed import Client

        try:
            client = Client(config.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:  # the scheduler went away since it answered the probe
            raise _unreachable(config.scheduler, exc) from None
        cluster = None
    else:
        from distributed import Client

        cluster = engine.local_cluster(int(config.workers or 1), config.worker_memory)
        client = Client(cluster, set_as_default=False)
    try:
        if cluster is None:
            # Workers of a cluster started a moment ago may still be registering.
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError:
                pass
        info = _describe(client, started=cluster is not None)
        if info.workers == 0:
            raise GpusegError(f"the Dask scheduler at {info.scheduler} has no workers; start "
                              f"some with `dask worker {info.scheduler}`")
        # Current in this context: dask.compute, persist and the performance report use it.
        with client.as_current():
            yield client, info
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_scheduler(address: str) -> None:
    """Raise unless ``address`` is a Dask scheduler that answers, within bounded time.

    In three steps, each failing with one line that names the address: the
    address is parsed (a scheme Dask has a transport for, a host and a port);
    a plain TCP connection is tried, which fails in milliseconds where nothing
    listens; then Dask's own handshake must complete within
    :data:`CONNECT_TIMEOUT_S` seconds, which a dashboard port or any other
    listener that accepts connections but never answers does not. Commands call
    this before their first stage.

    Raises
    ------
    GpusegError
        The address is malformed, its transport is not installed, nothing
        listens there, or what listens is not a Dask scheduler.
    """
    scheme, host, port = _parse(address)
    log.debug("checking that %s is a Dask scheduler", address)
    if scheme in _TCP_SCHEMES:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            raise _unreachable(address, exc) from None
    _handshake(address if "://" in address else f"tcp://{address}")


def _parse(address: str) -> tuple[str, str, int]:
    """Scheme, host and port of a scheduler address (``HOST:PORT`` means TCP)."""
    expected = "expected tcp://HOST:PORT, as dask scheduler prints it when it starts"
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        port = parts.port
    except ValueError as exc:
        raise GpusegError(f"{address} is not a scheduler address ({exc}); {expected}") from None
    if parts.scheme in ("http", "https"):
        raise GpusegError(f"{address} is a web address (a dashboard's?), not a scheduler address; "
                          f"{expected} (port 8786 unless it was changed)")
    from distributed.comm import registry

    try:
        # A transport whose library is missing (ucx:// without UCX) fails on its connector.
        registry.get_backend(parts.scheme).get_connector()
    except Exception as exc:
        raise GpusegError(f"{address}: Dask has no {parts.scheme}:// transport here "
                          f"({_one_line(exc)}); {expected}") from None
    if parts.scheme == "inproc":
        raise GpusegError(f"{address}: an inproc:// scheduler lives inside one Python process and "
                          f"cannot be joined from another; {expected}")
    if parts.hostname is None or port is None:
        raise GpusegError(f"{address} is not a scheduler address; {expected}")
    return parts.scheme, parts.hostname, port


def _handshake(address: str) -> None:
    """Complete Dask's connection handshake with ``address`` within the timeout, or raise.

    Dask's own connect waits for the peer's handshake without a deadline; it
    runs here in a daemon thread with its own event loop (the caller may be in
    one, as in a notebook), so a peer that never answers, or a signal meanwhile,
    cannot hold the command.
    """
    outcome: dict[str, BaseException] = {}

    async def connect() -> None:
        from distributed.comm import connect as dask_connect
        from distributed.security import Security

        comm = await dask_connect(address, timeout=CONNECT_TIMEOUT_S,
                                  **Security().get_connection_args("client"))
        await comm.close()

    def attempt() -> None:
        try:
            asyncio.run(asyncio.wait_for(connect(), CONNECT_TIMEOUT_S))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="gpuseg-scheduler-handshake", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + 1)
    error = outcome.get("error")
    if thread.is_alive() or isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise GpusegError(
            f"{address} accepted a connection but did not answer as a Dask scheduler within "
            f"{CONNECT_TIMEOUT_S} s (a dashboard or another service on that port?); the "
            "scheduler's address is the tcp:// one dask scheduler prints")
    if error is not None:
        raise GpusegError(f"{address} did not answer as a Dask scheduler "
                          f"({type(error).__name__}: {_one_line(error)}); the scheduler's "
                          "address is the tcp:// one dask scheduler prints") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _unreachable(address: str, exc: BaseException) -> GpusegError:
    return GpusegError(
        f"could not reach a Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
        f"({_one_line(exc)}); start one with `dask scheduler` and its workers with `dask worker "
        "ADDRESS`, or drop --scheduler and use --workers N to start a local cluster")


def _describe(client: Any, *, started: bool) -> ClusterInfo:
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return ClusterInfo(
        scheduler=str(client.scheduler.address), workers=len(workers), started=started,
        threads_per_worker=tuple(int(w.get("nthreads", 0)) for w in workers.values()),
        memory_limit=tuple(int(w.get("memory_limit") or 0) for w in workers.values()))


def worker_failure(stage: str, partitions: int, info: ClusterInfo) -> ResourceLimitError:
    """The error for a task whose workers kept dying in ``stage`` (Dask's ``KilledWorker``).

    A worker's nanny restarts it when it passes 95 % of its memory limit, so a
    partition too large for a worker kills every worker that runs it.
    """
    limits = sorted({value for value in info.memory_limit if value})
    limit = " / ".join(f"{value / 2**30:.2f} GiB" for value in limits) or "no"
    return ResourceLimitError(
        f"the {stage} stage failed: each Dask worker that ran one of its tasks died (out of its "
        f"{limit} memory limit, or crashed); with {partitions:,} partition"
        f"{'s' if partitions != 1 else ''} each holds too much for a worker: write the data in "
        "more, smaller partitions (--partitions of gpuseg partition or gpuseg synth), or give "
        "each worker more memory (--worker-memory, or fewer --workers)")


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
