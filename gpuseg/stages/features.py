"""Open a data set in one process: load it, compute every user's features, hold them in memory."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import resources
from ..activity import ordering_heatmap
from ..backend import Backend
from ..config import PipelineConfig
from ..data import load_instacart
from ..data.tables import InstacartData
from ..facts import InputFacts, UserCounts, catalog_names
from ..features import compute_features
from ..model_catalog import ModelCatalog
from ..rows import InMemoryRows
from ..short_history import users_history
from ..timing import StageTimer
from .base import Features, Session


@contextmanager
def in_memory(data: InstacartData | str | os.PathLike[str], config: PipelineConfig,
              backend: Backend, timer: StageTimer) -> Iterator[Session]:
    """Load ``data`` (unless already loaded) and compute its features on ``backend``."""
    if not isinstance(data, InstacartData):
        with timer.stage("load"):
            data = load_instacart(data, backend=backend)
    data = data.on(backend)
    with timer.stage("features"):
        resources.check_features(data, backend)
        user_features = compute_features(data, backend, min_orders=config.min_orders)
    table = user_features.table
    user_ids = backend.asarray(table.index)
    n_users = int(table.shape[0])
    loaded = data

    def history(labels: Any, k: int) -> Any:
        return ordering_heatmap(loaded.orders, loaded.order_products, user_ids, labels, k,
                                backend)

    features = Features(
        X=backend.asarray(table, dtype="float64"), user_ids=backend.to_numpy(user_ids, np.int64),
        names=tuple(str(c) for c in table.columns),
        catalog=catalog_names(data.aisles, data.departments, data.products, backend),
        users=UserCounts(with_history=user_features.n_users_with_history,
                         excluded_min_orders=user_features.n_users_excluded, segmented=n_users),
        input=InputFacts(source=data.source, fingerprint=data.fingerprint,
                         cleaning=dict(data.cleaning)),
        model_catalog=ModelCatalog.from_tables(data.products, data.aisles, data.departments))
    def histories(ids: np.ndarray) -> InstacartData:
        return users_history(loaded, ids)

    yield Session(rows=InMemoryRows(backend, n_users, history=history, histories=histories),
                  features=features, timer=timer)
