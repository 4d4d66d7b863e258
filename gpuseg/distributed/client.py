"""The Dask cluster of a run: join a running scheduler or start a local cluster, then close it.

``--scheduler ADDRESS`` joins a cluster someone started (``dask scheduler`` and
``dask worker ADDRESS``, or ``dask cuda worker ADDRESS`` per GPU machine);
``--workers N`` starts a local one for the run and closes it afterwards. A
scheduler that does not answer is a user error within
:data:`CONNECT_TIMEOUT_S` seconds, naming the address. Worker failures the run
cannot recover from (a worker killed again and again while running the same
task, which is what running out of memory looks like) become a
:class:`~gpuseg.errors.ResourceLimitError` naming ``--partitions``.
"""
from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import GpusegError, ResourceLimitError

if TYPE_CHECKING:
    from ..config import PipelineConfig
    from .engine import DaskEngine

#: Seconds to wait for a scheduler to answer before giving up on its address.
CONNECT_TIMEOUT_S = 5


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
        The scheduler at ``config.scheduler`` did not answer, or has no workers.
    """
    if config.scheduler is not None:
        # A plain TCP probe first: it fails in milliseconds where nothing listens, before
        # the seconds that importing dask.distributed takes.
        _probe(config.scheduler)
        from distributed import Client

        try:
            client = Client(config.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
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


def _probe(address: str) -> None:
    """Raise the unreachable-scheduler error when nothing accepts a TCP connection there."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return  # another transport (ucx, inproc): the client's own connect decides
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.hostname is None or port is None:
        raise GpusegError(f"{address} is not a scheduler address; expected tcp://HOST:PORT "
                          "(dask scheduler prints it when it starts)")
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise _unreachable(address, exc) from None


def _unreachable(address: str, exc: BaseException) -> GpusegError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return GpusegError(
        f"could not reach a Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s ({detail}); "
        "start one with `dask scheduler` and its workers with `dask worker ADDRESS`, or drop "
        "--scheduler and use --workers N to start a local cluster")


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
