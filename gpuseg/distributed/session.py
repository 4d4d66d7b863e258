"""A partitioned data set opened as a row source on a Dask cluster, for one run.

:func:`dask_session` starts or joins the cluster (:mod:`~gpuseg.distributed.client`),
maps the feature computation over the partitions
(:func:`~gpuseg.distributed.rows.partition_rows`) and yields the
:class:`~gpuseg.stages.base.Session` the orchestrator runs every stage on. The
run directory gains the Dask performance report; metrics.json the cluster's
facts and every process's peak memory.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backend import Backend
from ..config import PipelineConfig
from ..data.cache import file_stamps, fingerprint
from ..data.checks import CLEANING_KEYS, DataCleaningWarning
from ..data.partitions.source import PartitionedSource, find_partitioned, read_catalog
from ..errors import GpusegError
from ..facts import InputFacts, UserCounts, catalog_names
from ..features import feature_columns
from ..model_catalog import ModelCatalog
from ..registry import dask_engine
from ..stages.base import Features, Output, RunState, Session, Stage, run_stage
from ..timing import StageTimer
from .client import ClusterInfo, dask_client, peak_rss_bytes, worker_failure
from .rows import partition_rows

log = logging.getLogger(__name__)

#: The Dask performance report's file name in the run directory.
PERFORMANCE_REPORT = "dask-performance-report.html"


@dataclass
class DaskSession(Session):
    """A session whose stages turn workers that kept dying into an error naming --partitions."""

    source: PartitionedSource = field(kw_only=True)
    info: ClusterInfo = field(kw_only=True)

    def stage(self, name: str) -> AbstractContextManager[None]:
        return _staged(self.timer, name, self.source, self.info)

    def run(self, stage: Stage[Any, Output], state: RunState) -> Output:
        """Run ``stage``; once more if a worker died holding the only copy of its scattered
        parameters (its fit is seeded, so the second run gives the same output)."""
        from distributed.client import FutureCancelledError

        try:
            return run_stage(stage, state)
        except FutureCancelledError as exc:
            log.warning("stage %s lost data with a worker (%s); running it again", stage.name,
                        " ".join(str(exc).split())[:200])
            return run_stage(stage, state)


@contextmanager
def _staged(timer: StageTimer, name: str, source: PartitionedSource,
            info: ClusterInfo) -> Iterator[None]:
    """Time stage ``name``; a task whose workers kept dying becomes an error naming --partitions."""
    from distributed import KilledWorker

    with timer.stage(name):
        try:
            yield
        except KilledWorker as exc:
            raise worker_failure(name, source.n_partitions, info) from exc


@contextmanager
def dask_session(data: str | os.PathLike[str], config: PipelineConfig, backend: Backend,
                 timer: StageTimer) -> Iterator[Session]:
    """Open the partitioned folder ``data`` on the cluster ``config`` names (or starts).

    Raises
    ------
    GpusegError
        The folder is not partitioned, the scheduler does not answer, or no
        user has ``min_orders`` orders.
    """
    source = find_partitioned(Path(data).expanduser().resolve())
    if source is None:
        raise GpusegError(
            f"{data}: a run across Dask workers (--workers, --scheduler) reads the partitioned "
            "layout (orders/part-*.parquet, ...); write it with gpuseg partition --data "
            f"{data} --out DIR --partitions N and run on DIR")
    engine = dask_engine(backend)
    with tempfile.TemporaryDirectory(prefix="gpuseg-dask-") as scratch:
        report = Path(scratch) / PERFORMANCE_REPORT
        with dask_client(config, engine) as (client, info):
            from distributed import performance_report

            with performance_report(filename=str(report)):
                session = _open(client, info, source, config, backend, timer)
                yield session
                session.facts = _facts(client, info, source, engine.name)
        session.files = {PERFORMANCE_REPORT: report.read_text(encoding="utf-8")}


def _open(client: Any, info: ClusterInfo, source: PartitionedSource, config: PipelineConfig,
          backend: Backend, timer: StageTimer) -> DaskSession:
    """Load the catalog and map the features over the partitions (the load and features stages)."""
    with _staged(timer, "load", source, info):
        catalog_frames = read_catalog(source)
        catalog = client.submit(read_catalog, source, pure=True)
        names = feature_columns(int(a) for a in catalog_frames["aisles"]["aisle_id"])
    with _staged(timer, "features", source, info):
        rows, X, user_ids, summaries = partition_rows(client, backend, source, catalog,
                                                      min_orders=config.min_orders,
                                                      feature_names=names)
        for message in (m for s in summaries for m in s.messages):
            warnings.warn(message, DataCleaningWarning, stacklevel=4)
    features = Features(
        X=X, user_ids=user_ids, names=tuple(names),
        catalog=catalog_names(catalog_frames["aisles"], catalog_frames["departments"],
                              catalog_frames["products"], backend),
        users=UserCounts(with_history=sum(s.n_with_history for s in summaries),
                         excluded_min_orders=sum(s.n_excluded for s in summaries),
                         segmented=rows.n_users),
        input=InputFacts(source=str(source.folder),
                         fingerprint=fingerprint(file_stamps(source.files())),
                         cleaning={key: sum(int(s.cleaning[key]) for s in summaries)
                                   for key in CLEANING_KEYS}),
        model_catalog=ModelCatalog.from_tables(catalog_frames["products"],
                                               catalog_frames["aisles"],
                                               catalog_frames["departments"]))
    return DaskSession(rows=rows, features=features, timer=timer, source=source, info=info)


def _facts(client: Any, info: ClusterInfo, source: PartitionedSource,
           engine: str) -> dict[str, Any]:
    """Where the run computed and every process's peak memory so far."""
    workers = client.run(peak_rss_bytes)
    return {**info.to_dict(), "engine": engine, "partitions": source.n_partitions,
            "peak_rss_bytes": {"client": peak_rss_bytes(),
                               "scheduler": client.run_on_scheduler(peak_rss_bytes),
                               "workers": dict(sorted(workers.items()))},
            "scheduler_in_client_process": info.started,
            "performance_report": PERFORMANCE_REPORT}
