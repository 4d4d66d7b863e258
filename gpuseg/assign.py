"""Segment new users with a saved model, without refitting: ``gpuseg assign`` and ``gpuseg serve``.

The data goes through the same feature code as a run; the users are then
projected, assigned and given their memberships by the model's own
arithmetic (:mod:`gpuseg.model`). :func:`assign_tables` is that path from
loaded tables to segments, shared by the command (:func:`assign_users`) and
the service (:mod:`gpuseg.serve`).
"""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .backend import Backend
from .data.tables import InstacartData
from .errors import GpusegError
from .features import compute_features, no_users_selected
from .model import (
    SegmentModel,
    load_model,
    memberships,
    nearest_centroid,
    project_features,
    resolve_model_dir,
)
from .timing import ProgressCallback, StageTimer

log = logging.getLogger(__name__)


def assign(model: SegmentModel, features_table: Any, backend: Backend) -> Any:
    """Nearest-centroid segment of each row of a feature table, in float64.

    Parameters
    ----------
    model : SegmentModel
    features_table : DataFrame
        Backend dataframe whose columns include every ``model.feature_names``
        (extra columns are ignored; order does not matter).
    backend : Backend
        Where to compute; need not be the backend the model was fitted on.

    Returns
    -------
    array
        int32 segment numbers (backend array), numbered as in the fitted run.
    """
    return nearest_centroid(model, project_features(model, features_table, backend), backend)


#: Columns of :attr:`Assignment.users`, in order (the last three only when the model gives
#: memberships: every model from format 4, and the older ones that hold a mixture), as in a
#: run's segments.parquet.
ASSIGNED_COLUMNS = ("user_id", "segment", "persona", "membership", "second_segment",
                    "second_membership")
#: Columns of ``gpuseg assign``'s file (:func:`every_user`): every input user, the assigned
#: ones with ``provisional`` (fewer orders than the model's ``min_orders``, assigned because
#: ``--min-orders`` let them in) and the others with their ``excluded`` reason.
OUTPUT_COLUMNS = ASSIGNED_COLUMNS + ("provisional", "excluded")
#: Why a user of the input has no segment: none of their orders has a product row.
NO_PRODUCTS_REASON = "no order with products"


def too_few_orders_reason(n_orders: int, min_orders: int) -> str:
    """Why a user with ``n_orders`` orders with products has no segment (fewer than ``min_orders``)."""
    return (f"{n_orders} order{'s' if n_orders != 1 else ''} with products; "
            f"the model segments shoppers with at least {min_orders}")


@dataclass(frozen=True)
class Assignment:
    """Every user of a data set: those given a segment, and those left out with the reason.

    Attributes
    ----------
    users : pandas.DataFrame
        :data:`ASSIGNED_COLUMNS`: ``user_id`` (int64), ``segment`` (int32),
        ``persona`` (str), and when the model gives memberships ``membership``,
        ``second_segment`` (int32) and ``second_membership`` (float64), then
        ``provisional`` (bool: fewer orders than the model's ``min_orders``); by
        user_id. A provisional user's membership is NaN unless the model holds a
        calibration for that many orders: the run's certainty was measured on
        full histories only.
    excluded : pandas.DataFrame
        ``user_id`` (int64), ``orders_with_products`` (int64) and ``reason``
        (str): the users of the orders table without a segment, by user_id.
    n_users_with_history : int
        Users with at least one order that has product rows.
    min_orders : int
        The fewest orders with products a user needed to be assigned.
    """

    users: pd.DataFrame
    excluded: pd.DataFrame
    n_users_with_history: int
    min_orders: int

    def summary(self, model_min_orders: int) -> str:
        """How many users were assigned (provisionally), and how many were left out and why."""
        provisional = int(self.users["provisional"].sum())
        text = f"assigned {len(self.users):,} users"
        if provisional:
            text += (f" ({provisional:,} provisionally, with {self.min_orders}-"
                     f"{model_min_orders - 1} orders: fewer than the model's {model_min_orders})")
        if self.excluded.empty:
            return text + "; left out none"
        no_history = int((self.excluded["reason"] == NO_PRODUCTS_REASON).sum())
        few = len(self.excluded) - no_history
        why = []
        if few:
            why.append(f"{few:,} with fewer than {self.min_orders} orders with products")
        if no_history:
            why.append(f"{no_history:,} with {NO_PRODUCTS_REASON}")
        return f"{text}; left out {len(self.excluded):,}: {', '.join(why)}"


def assign_tables(model: SegmentModel, data: InstacartData, backend: Backend, *,
                  timer: StageTimer | None = None, min_orders: int | None = None) -> Assignment:
    """Segment, persona and memberships of every user of loaded tables, from a model (no refit).

    The one path from tables to segments: ``gpuseg assign`` (:func:`assign_users`)
    and ``gpuseg serve`` both call it. Features come from
    :func:`gpuseg.features.compute_features`; the users with at least the
    model's ``min_orders`` orders with products are projected, assigned and
    given their memberships by the model's arithmetic (:mod:`gpuseg.model`).

    Parameters
    ----------
    model : SegmentModel
    data : InstacartData
        Tables on ``backend`` (moved there if they are elsewhere).
    backend : Backend
    timer : StageTimer, optional
        Times the ``features`` and ``assign`` stages (``gpuseg assign`` logs them).
    min_orders : int, optional
        The fewest orders with products a user needs (default: the model's); users
        below the model's ``min_orders`` are assigned ``provisional``.

    Returns
    -------
    Assignment

    Raises
    ------
    GpusegError
        When the data lacks features the model was fitted on (they are named),
        or no user has an order with products.
    """
    data = data.on(backend)
    xp = backend.xp
    stage = timer.stage if timer is not None else lambda name: nullcontext()
    with stage("features"):
        # Every user with a history gets features, so that the excluded ones can say how many
        # orders they have; each user's features depend only on their own rows, so the selected
        # users' values are exactly those of a run with the model's min_orders.
        features = compute_features(data, backend, min_orders=1)
    missing = [name for name in model.feature_names if name not in features.table.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise GpusegError(f"the data lacks {len(missing)} feature(s) the model was fitted on: "
                          f"{shown} (was it exported with another catalog?)")
    floor = model.min_orders if min_orders is None else min_orders
    if floor < 1:
        raise GpusegError(f"min_orders must be at least 1 (got {floor})")
    n_orders = backend.asarray(features.table["n_orders"], dtype=xp.int64)
    selected = n_orders >= floor
    table = features.table[selected] if not bool(selected.all()) else features.table
    with stage("assign"):
        users = _assigned(model, table, backend)

    with_history = backend.to_numpy(backend.asarray(features.table.index), np.int64)
    few = ~backend.to_numpy(selected, bool)
    few_orders = backend.to_numpy(n_orders, np.int64)[few]
    every_user = backend.to_numpy(xp.unique(backend.asarray(data.orders["user_id"], dtype=xp.int64)),
                                  np.int64)
    without_history = every_user[~np.isin(every_user, with_history, assume_unique=True)]
    user_ids = np.concatenate([with_history[few], without_history])
    by_user = np.argsort(user_ids, kind="stable")
    reasons = np.asarray([too_few_orders_reason(int(n), floor) for n in few_orders]
                         + [NO_PRODUCTS_REASON] * len(without_history), dtype=object)
    excluded = pd.DataFrame({
        "user_id": user_ids[by_user],
        "orders_with_products": np.concatenate([few_orders, np.zeros_like(without_history)])[by_user],
        "reason": pd.array(reasons[by_user], dtype="str"),
    })
    return Assignment(users=users, excluded=excluded,
                      n_users_with_history=features.n_users_with_history, min_orders=floor)


def every_user(assignment: Assignment) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for every input user, by user_id: the assigned users, then the
    left-out ones with no segment (nullable columns) and their ``excluded`` reason."""
    users = assignment.users.assign(excluded=pd.array([None] * len(assignment.users),
                                                      dtype="str"))
    left_out = assignment.excluded[["user_id", "reason"]].rename(columns={"reason": "excluded"})
    table = pd.concat([users, left_out], ignore_index=True)
    table["segment"] = table["segment"].astype("Int32")
    if "second_segment" in table:
        table["second_segment"] = table["second_segment"].astype("Int32")
    table["provisional"] = table["provisional"].astype("boolean")
    columns = [c for c in OUTPUT_COLUMNS if c in table.columns]
    return table[columns].sort_values("user_id", kind="stable").reset_index(drop=True)


def _assigned(model: SegmentModel, table: Any, backend: Backend) -> pd.DataFrame:
    """The :data:`ASSIGNED_COLUMNS` of the users of a feature table (host frame)."""
    projected = project_features(model, table, backend)
    labels = nearest_centroid(model, projected, backend)
    segments = backend.to_numpy(labels, np.int32)
    names = np.asarray(model.persona_names, dtype=object)
    orders = backend.to_numpy(backend.asarray(table["n_orders"]), np.int64)
    provisional = orders < model.min_orders
    columns: dict[str, Any] = {
        "user_id": backend.to_numpy(backend.asarray(table.index), np.int64),
        "segment": segments,
        "persona": pd.array(names[segments], dtype="str"),
    }
    if model.gives_memberships:
        own, second, second_p = memberships(model, projected, labels, backend,
                                            orders=backend.asarray(orders))
        own, second_p = backend.to_numpy(own, np.float64), backend.to_numpy(second_p, np.float64)
        calibrated = set() if model.certainty is None else set(model.certainty.short_history)
        unknown = provisional & ~np.isin(orders, list(calibrated))
        own[unknown], second_p[unknown] = np.nan, np.nan
        columns["membership"] = own
        columns["second_segment"] = backend.to_numpy(second, np.int32)
        columns["second_membership"] = second_p
    columns["provisional"] = provisional
    return pd.DataFrame(columns)


def assign_users(model_dir: str | os.PathLike, data_source: Any, backend: Backend, *,
                 progress: ProgressCallback | None = None) -> pd.DataFrame:
    """:attr:`Assignment.users` of :func:`assign_from_model` (see there)."""
    return assign_from_model(model_dir, data_source, backend, progress=progress)[1].users


def assign_from_model(model_dir: str | os.PathLike, data_source: Any, backend: Backend, *,
                      progress: ProgressCallback | None = None,
                      min_orders: int | None = None) -> tuple[SegmentModel, Assignment]:
    """Segment and persona of every user of a data set, from a saved model (no refit).

    Parameters
    ----------
    model_dir : path
        A model folder, or a run directory holding one.
    data_source : path, str or InstacartData
        What :func:`gpuseg.data.load_instacart` accepts (a folder or
        ``"kaggle"``), or tables already loaded on ``backend``.
    backend : Backend
    progress : callable, optional
        Called with each stage's name (``load``, ``features``, ``assign``) as it starts.
    min_orders : int, optional
        As :func:`assign_tables`.

    Returns
    -------
    model : SegmentModel
    assignment : Assignment
        Of :func:`assign_tables`.

    Raises
    ------
    GpusegError
        When the model is missing or corrupt, the data lacks features the
        model was fitted on (they are named), or no user has enough orders.
    """
    from .data import load_instacart

    model = load_model(resolve_model_dir(model_dir))
    timer = StageTimer(backend, progress)
    data = data_source
    if not isinstance(data, InstacartData):
        with timer.stage("load"):
            data = load_instacart(data_source, backend=backend)
    assignment = assign_tables(model, data, backend, timer=timer, min_orders=min_orders)
    if assignment.users.empty:
        raise no_users_selected(assignment.min_orders, assignment.n_users_with_history)
    log.info("%s", assignment.summary(model.min_orders))
    return model, assignment
