"""Segment profiles: size, behaviour, department lifts, standout aisles and timing per segment."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import GpusegError
from ..features import AISLE_COLUMN_PREFIX, aisle_id
from ..numerics.arrays import segment_sums

if TYPE_CHECKING:
    from ..backend import Backend

#: The feature table's aisle-share column prefix (:data:`gpuseg.features.AISLE_COLUMN_PREFIX`).
AISLE_PREFIX = AISLE_COLUMN_PREFIX
#: Profile columns of each department: its share of the segment's items and that share's lift.
DEPARTMENT_SHARE_PREFIX = "dept_share_"
DEPARTMENT_LIFT_PREFIX = "dept_lift_"
#: Departments or aisles below this share of the population's items get no lift
#: (a lift of a rare category is mostly noise).
MIN_POPULATION_SHARE = 0.005
TOP_AISLES = 5
TOP_DEPARTMENTS = 3
#: A segment's volume: its users' orders and items, and their shares of every segmented user's
#: (items per user are ``n_orders * basket_size_mean``, the user's product rows).
VOLUME_COLUMNS = ("orders", "items", "order_share", "item_share")

#: Columns the profile (and so the naming rules) cannot do without.
_REQUIRED_FEATURES = ("hour_sin", "hour_cos", "days_between_mean")
#: The features a segment's orders and items are summed from.
_VOLUME_FEATURES = ("n_orders", "basket_size_mean")


# -- profiles ----------------------------------------------------------------------------------
def profile_segments(features: Any, labels: Any, backend: Backend, *,
                     aisles: Mapping[int, str], departments: Mapping[int, str],
                     aisle_department: Mapping[int, int]) -> pd.DataFrame:
    """One row per segment: size, behaviour, departments, standout aisles, timing.

    Parameters
    ----------
    features : backend DataFrame
        Per-user features indexed by user_id: ``n_orders``, ``aisle_<id>``
        shares and the behavioural columns (``hour_sin``, ``hour_cos`` and
        ``days_between_mean`` are required).
    labels : backend int array, shape (n_users,)
        Segment of each row of ``features``, in row order.
    backend : Backend
        The grouped means are computed with ``backend.df``; the K-row results
        come to the host once.
    aisles, departments : mapping of id to name
    aisle_department : mapping of aisle id to department id
        Aisles missing here count in no department.

    Returns
    -------
    pandas.DataFrame
        K rows ordered by segment, with columns:

        - ``segment``, ``size``, ``share`` (of all users);
        - the segment mean of every behavioural (non-aisle) feature;
        - ``preferred_hour``: the circular mean hour (0-23) from the mean
          ``hour_sin``/``hour_cos``; ``hour_shift``: hours later (+) or
          earlier (-) than the population's, in [-12, 12);
        - ``weekend_share``: the mean share of orders placed at the weekend
          (when ``weekend_ratio`` is present);
        - ``dept_share_<name>``: aisle shares summed by department;
          ``dept_lift_<name>``: that share over the population's (NaN for a
          department the population never buys);
        - ``top_aisles`` / ``top_aisle_lifts``: the 5 aisles with the highest
          lift among aisles with at least 0.5 % of the population's items;
          ``top_departments`` / ``top_department_lifts``: the same for 3
          departments;
        - ``z_<feature>`` for every behavioural feature: the standardised
          mean difference (segment mean - population mean) / population SD
          (0 where the SD is 0);
        - ``orders``, ``items``, ``order_share``, ``item_share``: the
          segment's orders and items and their shares of all segmented
          users' (when ``n_orders`` and ``basket_size_mean`` are present).

    Raises
    ------
    GpusegError
        When a required column is missing or the labels do not match the rows.
    """
    behavioural = [str(c) for c in features.columns if not str(c).startswith(AISLE_PREFIX)]
    missing = [c for c in _REQUIRED_FEATURES if c not in behavioural]
    if missing:
        raise GpusegError(f"profile_segments needs the feature columns {', '.join(missing)}")
    if int(labels.shape[0]) != int(features.shape[0]):
        raise GpusegError(
            f"labels ({labels.shape[0]}) and feature rows ({features.shape[0]}) differ in length")
    grouped = features.assign(segment=labels).groupby("segment", sort=True)
    volume = None
    if all(c in behavioural for c in _VOLUME_FEATURES):
        items = features["n_orders"] * features["basket_size_mean"]
        sums = (features[["n_orders"]].assign(items=items, segment=labels)
                .groupby("segment", sort=True).sum())
        volume = backend.to_host(sums).to_numpy(dtype=np.float64)
    # The grouped means and population moments are K- and feature-sized: the one host step.
    return profiles_from_moments(
        backend.to_host(grouped.mean()), backend.to_host(grouped.size()),
        backend.to_host(features.mean()), backend.to_host(features.std(ddof=0)),
        aisles=aisles, departments=departments, aisle_department=aisle_department,
        volume=volume)


def segment_moments(backend: Backend, X: Any, labels: Any, k: int) -> np.ndarray:
    """A block's per-segment feature sums and user counts: (k, n_features + 1) on the host."""
    xp = backend.xp
    sums, counts = segment_sums(X, labels.astype(xp.int64), k, xp=xp)
    return backend.to_numpy(xp.concatenate([sums, counts[:, None].astype(X.dtype)], axis=1),
                            np.float64)


def segment_volume(backend: Backend, X: Any, labels: Any, k: int, *, orders: int,
                   basket: int) -> np.ndarray:
    """A block's orders and items per segment: (k, 2) on the host.

    ``orders`` and ``basket`` are the positions of ``n_orders`` and
    ``basket_size_mean`` among the columns of ``X``; a user's items are their
    product.
    """
    xp = backend.xp
    volume = xp.stack([X[:, orders], X[:, orders] * X[:, basket]], axis=1)
    sums, _ = segment_sums(volume, labels.astype(xp.int64), k, xp=xp)
    return backend.to_numpy(sums, np.float64)


def volume_positions(feature_names: Sequence[str]) -> dict[str, int] | None:
    """``{"orders": i, "basket": j}``: where :func:`segment_volume` reads its columns (``None``
    when the features lack them)."""
    names = list(feature_names)
    if not all(c in names for c in _VOLUME_FEATURES):
        return None
    return {"orders": names.index("n_orders"), "basket": names.index("basket_size_mean")}


def profiles_from_moments(means: pd.DataFrame, sizes: pd.Series, population_mean: pd.Series,
                          population_sd: pd.Series, *, aisles: Mapping[int, str],
                          departments: Mapping[int, str],
                          aisle_department: Mapping[int, int],
                          volume: np.ndarray | None = None) -> pd.DataFrame:
    """The profiles of :func:`profile_segments` from the per-segment and population moments.

    Everything a profile says follows from these host tables, so a run that
    computes them elsewhere (summed over partitions) builds the same profiles.

    Parameters
    ----------
    means : pandas.DataFrame
        Mean of every feature per segment, indexed by segment (ascending).
    sizes : pandas.Series
        Users per segment, indexed by segment.
    population_mean, population_sd : pandas.Series
        Mean and population standard deviation (ddof 0) of every feature.
    aisles, departments, aisle_department
        As :func:`profile_segments`.
    volume : numpy.ndarray, optional
        Orders and items of each segment, (K, 2) by segment
        (:func:`segment_volume`); gives the :data:`VOLUME_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        As :func:`profile_segments`.
    """
    columns = [str(c) for c in means.columns]
    aisle_columns = [c for c in columns if c.startswith(AISLE_PREFIX)]
    behavioural = [c for c in columns if not c.startswith(AISLE_PREFIX)]
    table: dict[str, Any] = {
        "segment": means.index.to_numpy().astype(np.int64),
        "size": sizes.reindex(means.index).to_numpy().astype(np.int64),
    }
    table["share"] = table["size"] / table["size"].sum()
    for column in behavioural:
        table[column] = means[column].to_numpy(dtype=np.float64)
    segment_hour = _circular_hour(means["hour_sin"].to_numpy(), means["hour_cos"].to_numpy())
    population_hour = _circular_hour(np.array([population_mean["hour_sin"]]),
                                     np.array([population_mean["hour_cos"]]))[0]
    table["preferred_hour"] = np.rint(segment_hour).astype(np.int64) % 24
    table["hour_shift"] = (segment_hour - population_hour + 12.0) % 24.0 - 12.0
    if "weekend_ratio" in behavioural:
        table["weekend_share"] = table["weekend_ratio"]

    aisle_ids = np.array([aisle_id(c) for c in aisle_columns], dtype=np.int64)
    segment_aisle = means[aisle_columns].to_numpy(dtype=np.float64)
    population_aisle = population_mean[aisle_columns].to_numpy(dtype=np.float64)
    department_ids = sorted({int(aisle_department[a]) for a in aisle_ids if a in aisle_department})
    membership = np.zeros((aisle_ids.size, len(department_ids)))
    for row, aisle in enumerate(aisle_ids):
        if aisle in aisle_department:
            membership[row, department_ids.index(int(aisle_department[aisle]))] = 1.0
    segment_department = segment_aisle @ membership
    population_department = population_aisle @ membership
    department_names = [departments.get(d, f"department {d}") for d in department_ids]
    department_lift = _lift(segment_department, population_department)
    for j, name in enumerate(department_names):
        table[f"{DEPARTMENT_SHARE_PREFIX}{name}"] = segment_department[:, j]
    for j, name in enumerate(department_names):
        table[f"{DEPARTMENT_LIFT_PREFIX}{name}"] = department_lift[:, j]
    aisle_names = [aisles.get(int(a), f"aisle {a}") for a in aisle_ids]
    table["top_aisles"], table["top_aisle_lifts"] = _top_by_lift(
        _lift(segment_aisle, population_aisle), population_aisle, aisle_names, TOP_AISLES)
    table["top_departments"], table["top_department_lifts"] = _top_by_lift(
        department_lift, population_department, department_names, TOP_DEPARTMENTS)
    for column in behavioural:
        sd = float(population_sd[column])
        difference = table[column] - float(population_mean[column])
        table[f"z_{column}"] = difference / sd if sd > 0 else np.zeros_like(difference)
    if volume is not None:
        volume = np.asarray(volume, dtype=np.float64)
        table["orders"], table["items"] = volume[:, 0], volume[:, 1]
        table["order_share"] = volume[:, 0] / volume[:, 0].sum()
        table["item_share"] = volume[:, 1] / volume[:, 1].sum()
    return pd.DataFrame(table)


def _circular_hour(mean_sin: np.ndarray, mean_cos: np.ndarray) -> np.ndarray:
    """Hour of day in [0, 24) of the mean direction of (cos, sin) of 2*pi*hour/24."""
    return (np.arctan2(mean_sin, mean_cos) * 24.0 / (2.0 * math.pi)) % 24.0


def _lift(segment_share: np.ndarray, population_share: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(population_share > 0, segment_share / population_share, np.nan)


def _top_by_lift(lift: np.ndarray, population_share: np.ndarray, names: Sequence[str],
                 top: int) -> tuple[list[list[str]], list[list[float]]]:
    eligible = np.flatnonzero(population_share >= MIN_POPULATION_SHARE)
    top_names, top_lifts = [], []
    for row in lift:
        order = sorted(eligible, key=lambda j: (-row[j], j))[:top]
        top_names.append([names[int(j)] for j in order])
        top_lifts.append([float(row[j]) for j in order])
    return top_names, top_lifts
