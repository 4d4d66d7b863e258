"""Golden runs: what a segmentation produces stays what it produced, on one process and on Dask.

Fixed seeds of ``strong`` and ``realistic`` synthetic shoppers are segmented in
one process and across a two-worker ``LocalCluster``; each run's per-user
columns, profiles and every number of its metrics are compared with the
stored answer in ``tests/golden/``. A change of the code's shape must keep
them; a change of behaviour made on purpose rewrites them with
``GPUSEG_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says why
in its commit.

Tolerances: labels are compared exactly (segments are numbered by size, so
the numbers are comparable), allowing one user in a thousand to move where a
floating-point sum in another order flips a tie; floats to 1e-6 relative.
"""
from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

from gpuseg.config import PipelineConfig  # noqa: E402
from gpuseg.data.synth import write_partitioned  # noqa: E402
from gpuseg.pipeline import segment  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GPUSEG_UPDATE_GOLDEN") == "1"
N_USERS = 2_500
#: Light settings: every stage runs, on few initialisations.
SETTINGS = dict(seed=11, n_init=3, sweep_n_init=1, stability_seeds=2, bootstrap_rounds=1,
                hierarchical_micro_clusters=100, umap_fit_sample=600)
#: Per-user columns compared: labels exactly, the rest as floats.
LABEL_COLUMNS = ("segment", "second_segment", "hierarchical", "dbscan")
FLOAT_COLUMNS = ("membership", "second_membership", "silhouette", "umap_x", "umap_y")
#: Metrics that describe where and when a run computed, not what it found.
VOLATILE = ("timings", "versions", "device", "gpuseg_version", "input.source",
            "input.fingerprint", "distributed", "config.scheduler", "config.workers")
RTOL, ATOL = 1e-6, 1e-9
#: Share of users whose label may differ (a tie broken by another summation order).
LABEL_SLACK = 0.001


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local:
        yield local


@pytest.fixture(scope="module", params=["strong", "realistic"])
def data(request, tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp(request.param) / "data"
    write_partitioned(N_USERS, folder, partitions=3, seed=5, separation=request.param)
    return request.param, folder


def _numbers(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON-like tree by its dotted path (lists by position)."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(tree))
    else:
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if not any(path == v or path.startswith(v + ".") for v in VOLATILE):
            leaves.update(_numbers(value, path))
    return leaves


def _snapshot(result) -> dict[str, Any]:
    segments = result.segments
    columns = {c: segments[c].tolist() for c in (*LABEL_COLUMNS, *FLOAT_COLUMNS)
               if c in segments.columns}
    profiles = result.profiles.drop(columns=[c for c in result.profiles.columns
                                             if result.profiles[c].dtype == object
                                             and c != "persona"])
    # metrics.json's contents, from a typed Metrics or (before it existed) a plain dict.
    metrics = result.metrics.to_dict() if hasattr(result.metrics, "to_dict") else result.metrics
    metrics = json.loads(json.dumps(metrics, default=_plain))
    return {"user_id": segments["user_id"].tolist(), "columns": columns,
            "profiles": json.loads(profiles.to_json(orient="split")),
            "metrics": _numbers(metrics)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not (
            isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return a == b
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)


def _check(name: str, got: dict[str, Any]) -> None:
    path = GOLDEN / f"{name}.json.gz"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as file:
            json.dump(got, file, sort_keys=True)
        pytest.skip(f"wrote {path}")
    with gzip.open(path, "rt", encoding="utf-8") as file:
        want = json.load(file)
    assert got["user_id"] == want["user_id"]
    for column in LABEL_COLUMNS:
        if column in want["columns"]:
            moved = np.mean(np.asarray(got["columns"][column]) != np.asarray(want["columns"][column]))
            assert moved <= LABEL_SLACK, f"{column}: {moved:.2%} of users changed label"
    for column in FLOAT_COLUMNS:
        if column in want["columns"]:
            np.testing.assert_allclose(np.asarray(got["columns"][column], dtype=float),
                                       np.asarray(want["columns"][column], dtype=float),
                                       rtol=RTOL, atol=1e-6, err_msg=column, equal_nan=True)
    g, w = (pd.DataFrame(**p) for p in (got["profiles"], want["profiles"]))
    pd.testing.assert_frame_equal(g[w.columns], w, rtol=RTOL, atol=ATOL, check_dtype=False)
    missing = sorted(set(want["metrics"]) - set(got["metrics"]))
    assert not missing, f"metrics no longer reported: {missing[:10]}"
    differ = [(key, got["metrics"][key], value) for key, value in want["metrics"].items()
              if not _close(got["metrics"][key], value)]
    assert not differ, f"{len(differ)} metrics changed, e.g. {differ[:8]}"


def test_one_process_run_is_unchanged(data):
    separation, folder = data
    result = segment(folder, PipelineConfig(backend="cpu", **SETTINGS))
    _check(f"one-process-{separation}", _snapshot(result))


def test_distributed_run_is_unchanged(data, cluster):
    separation, folder = data
    config = PipelineConfig(backend="cpu", scheduler=cluster.scheduler_address, **SETTINGS)
    _check(f"distributed-{separation}", _snapshot(segment(folder, config)))
