"""The backend interface: auto selection, clear GPU errors, lazy GPU imports, one host boundary."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gpuseg.backend import Backend
from gpuseg.errors import BackendUnavailableError
from gpuseg.registry import get_backend, gpu_unavailable_reason


def test_import_gpuseg_imports_no_gpu_library():
    code = ("import sys, gpuseg, gpuseg.pipeline, gpuseg.cli, cpu_fallback; "
            "gpuseg.get_backend('cpu'); "
            "print(sorted(m for m in ('cudf', 'cupy', 'cuml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cpu_backend_offers_the_whole_interface(cpu_backend):
    assert isinstance(cpu_backend, Backend)
    assert cpu_backend.name == "cpu" and cpu_backend.xp is np and cpu_backend.df is pd
    assert cpu_backend.device.startswith("CPU: ")
    X = np.random.default_rng(0).normal(size=(60, 3))
    labels = np.repeat([0, 1, 2], 20)
    for factory in (lambda: cpu_backend.KMeans(3, n_init=1, random_state=0),
                    lambda: cpu_backend.DBSCAN(0.5, 5), lambda: cpu_backend.NearestNeighbors(3),
                    lambda: cpu_backend.UMAP(n_neighbors=5, min_dist=0.1, random_state=0)):
        estimator = factory()
        assert hasattr(estimator, "fit")
    per_sample = cpu_backend.silhouette_samples(X, labels)
    assert per_sample.shape == (60,)
    assert cpu_backend.silhouette_score(X, labels) == pytest.approx(per_sample.mean())
    assert cpu_backend.adjusted_rand_score(labels, labels) == 1.0
    assert set(cpu_backend.versions()) >= {"numpy", "pandas", "scikit-learn", "umap-learn"}


def test_to_host_returns_host_types(backend):
    xp = backend.xp
    array = xp.arange(5, dtype=xp.float64)
    host = backend.to_host(array)
    assert isinstance(host, np.ndarray) and host.tolist() == [0, 1, 2, 3, 4]
    frame = backend.from_host(pd.DataFrame({"a": [1, 2]}))
    assert isinstance(backend.to_host(frame), pd.DataFrame)
    assert isinstance(backend.to_host(xp.float64(2.5)), float)
    assert backend.asarray(frame).shape == (2, 1)


@pytest.mark.skipif(gpu_unavailable_reason() is None, reason="a GPU is present here")
def test_gpu_request_without_rapids_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="backend='gpu' is not possible here: .*backend='cpu'"):
        get_backend("gpu")


@pytest.mark.skipif(gpu_unavailable_reason() is None, reason="a GPU is present here")
def test_auto_falls_back_to_cpu_and_says_why_in_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="gpuseg.registry"):
        backend = get_backend("auto")
    assert backend.name == "cpu"
    lines = [r.getMessage() for r in caplog.records if r.name == "gpuseg.registry"]
    assert len(lines) == 1 and lines[0].startswith("backend auto: falling back to CPU: ")


def test_unknown_backend_name_is_rejected():
    with pytest.raises(BackendUnavailableError, match="backend must be one of auto, gpu, cpu"):
        get_backend("tpu")


def test_asarray_of_a_range_index_is_its_values(backend):
    index = backend.from_host(pd.DataFrame({"a": np.arange(5.0)}, index=pd.RangeIndex(3, 13, 2))).index
    np.testing.assert_array_equal(backend.to_host(backend.asarray(index)), np.arange(3, 13, 2))
    np.testing.assert_array_equal(backend.to_host(backend.asarray(index, dtype="float64")),
                                  np.arange(3.0, 13.0, 2.0))


def test_asarray_turns_float_nulls_into_nan_and_refuses_integer_nulls(backend):
    frame = backend.from_host(pd.DataFrame({"days": [1.0, np.nan, 3.0],
                                            "count": pd.array([1, None, 3], dtype="Int64")}))
    days = backend.to_host(backend.asarray(frame["days"]))
    assert np.isnan(days[1]) and days[[0, 2]].tolist() == [1.0, 3.0]
    counts = backend.to_host(backend.asarray(frame["count"], dtype="float64"))
    assert np.isnan(counts[1]) and counts[[0, 2]].tolist() == [1.0, 3.0]
    with pytest.raises(ValueError):
        backend.asarray(frame["count"], dtype="int64")


def test_adjusted_rand_index_of_fewer_than_two_users_is_a_perfect_match(backend):
    for n in (0, 1):
        labels = backend.asarray(np.zeros(n, dtype=np.int32))
        assert backend.adjusted_rand_score(labels, labels) == 1.0
