"""Memory limits: honest estimates, early refusals naming the stage and option, tiles that fit.

``GPUSEG_MEMORY_LIMIT_BYTES`` stands in for a small machine: every backend's
``available_memory`` is capped by it, so the checks can be driven without
exhausting the test host.
"""
from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from gpuseg import resources
from gpuseg.backend import MEMORY_LIMIT_ENV
from gpuseg.cli import EXIT_USER_ERROR, main
from gpuseg.cluster import fit_kmeans
from gpuseg.config import PipelineConfig
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.data.tables import InstacartData
from gpuseg.errors import ConfigError, ResourceLimitError
from gpuseg.features import compute_features
from gpuseg.preprocess import preprocess
from gpuseg.quality import silhouette_report, stability
from gpuseg.timing import StageTimer

MiB = 1 << 20


@pytest.fixture(scope="module")
def synthetic():
    """2,000 synthetic shoppers as InstacartData, their features and PCA matrix (CPU)."""
    from gpuseg.registry import get_backend

    backend = get_backend("cpu")
    synth = generate_instacart(2_000, seed=1, separation="realistic")
    data = InstacartData(
        orders=synth.orders, products=synth.products, aisles=synth.aisles,
        departments=synth.departments,
        order_products=pd.concat([synth.order_products__prior, synth.order_products__train],
                                 ignore_index=True))
    features = compute_features(data, backend, min_orders=5)
    return data, features, preprocess(features.table, backend)


def measured_peak(run) -> int:
    """Peak bytes numpy and Python allocate while ``run()`` runs (after one warm-up call)."""
    run()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- the estimates ---------------------------------------------------------------------------

def test_estimates_are_close_to_what_the_stages_allocate(synthetic, cpu_backend, monkeypatch):
    # A 64 MiB budget keeps the silhouette's distance tiles at their 16 MiB minimum, which is
    # what the estimate counts (with more memory free the tiles grow into it).
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(64 * MiB))
    data, features, prep = synthetic
    X, (n, d), k = prep.X_pca, prep.X_pca.shape, 5
    km = fit_kmeans(X, cpu_backend, k=k, n_init=2, seed=0)
    stages = {
        "features": (resources.features_memory(
            n_product_rows=len(data.order_products), n_orders=len(data.orders),
            n_users=data.n_users, n_aisles=len(data.aisles), n_departments=len(data.departments)),
            lambda: compute_features(data, cpu_backend, min_orders=5)),
        "preprocess": (resources.preprocess_memory(*features.table.shape),
                       lambda: preprocess(features.table, cpu_backend)),
        "kmeans": (resources.kmeans_memory(n, d, k),
                   lambda: fit_kmeans(X, cpu_backend, k=k, n_init=2, seed=0)),
        "silhouette": (resources.silhouette_memory(n, d, k),
                       lambda: silhouette_report(X, km.labels, cpu_backend)),
        "stability": (resources.stability_memory(n, d, k),
                      lambda: stability(X, km.labels, cpu_backend, k=k, n_seeds=2, n_bootstrap=1,
                                        n_init=2, seed=0)),
    }
    for stage, (estimate, run) in stages.items():
        ratio = estimate.bytes / measured_peak(run)
        # Never well below what the stage takes (a refusal must not come too late), never so
        # far above that a run which fits is refused.
        assert 0.8 <= ratio <= 2.0, (stage, ratio, estimate.basis)


def test_the_dbscan_estimate_counts_the_neighbourhoods_it_keeps(synthetic, cpu_backend):
    from gpuseg.cluster import dbscan

    _, _, prep = synthetic
    n, d = prep.X_pca.shape
    estimate = resources.dbscan_memory(n, n, d, 20)
    # The density stage fits on the rows it gathers: a copy, as the estimate counts.
    ratio = estimate.bytes / measured_peak(
        lambda: dbscan(prep.X_pca[np.arange(n)], cpu_backend, min_samples=20))
    # Neighbourhoods grow with density; the estimate errs on the high side, within reason.
    assert 1.0 <= ratio <= 5.0, (ratio, estimate.basis)


def test_estimates_grow_with_what_the_options_control():
    assert (resources.silhouette_memory(20_000, 40, 5).bytes
            < resources.silhouette_memory(200_000, 40, 5).bytes)
    assert (resources.umap_memory(50_000, 40, 15).bytes
            < resources.umap_memory(200_000, 40, 15).bytes)
    # umap-learn's exact neighbours below 4,096 users hold a dense distance matrix.
    assert resources.umap_memory(4_000, 40, 15).bytes > 4_000**2 * 8
    assert resources.dbscan_memory(10_000, 200_000, 40, 20).bytes < \
        resources.dbscan_memory(200_000, 200_000, 40, 20).bytes


# -- available memory ------------------------------------------------------------------------

def test_available_memory_is_host_ram_capped_by_the_environment(cpu_backend, monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    free = cpu_backend.available_memory()
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        reported = next(int(line.split()[1]) * 1024 for line in meminfo
                        if line.startswith("MemAvailable:"))
    assert 0 < free <= reported * 1.5  # MemAvailable moves while the test runs
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "123456789")
    assert cpu_backend.available_memory() == 123_456_789
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(10 * free))
    assert cpu_backend.available_memory() <= 2 * free  # a cap above the truth changes nothing


@pytest.mark.parametrize("bad", ["lots", "-5", "0", "1.5e9"])
def test_a_malformed_memory_limit_is_a_config_error_naming_the_variable(cpu_backend, monkeypatch,
                                                                        bad):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, bad)
    with pytest.raises(ConfigError, match=f"{MEMORY_LIMIT_ENV} must be a positive number"):
        cpu_backend.available_memory()


def test_cpu_silhouette_works_in_tiles_and_gives_scikit_learns_scores(cpu_backend):
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4_000, 6))
    labels = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    peak = measured_peak(lambda: cpu_backend.silhouette_samples(X, labels))
    assert peak < 48 * MiB  # the whole 4,000 x 4,000 matrix would be 128 MB
    np.testing.assert_allclose(cpu_backend.silhouette_samples(X, labels),
                               silhouette_samples(X, labels), rtol=1e-12, atol=1e-12)


def test_gpu_tiles_are_sized_from_the_free_memory_at_instacart_scale():
    """The arithmetic of rapids.py, run with numpy standing in for CuPy (no GPU needed)."""
    from gpuseg.rapids import backend as rapids

    backend = object.__new__(rapids.RapidsBackend)
    backend.xp = np
    n, free = 206_209, 13 * 10**9  # a 16 GB card once the run's tables and matrices are resident
    backend.available_memory = lambda: free
    X = np.empty((n, 1))
    labels = np.arange(n) % 10
    chunk = backend._silhouette_chunk(X, labels)
    assert rapids.SILHOUETTE_MIN_CHUNK <= chunk < rapids.SILHOUETTE_CHUNK
    budget = (free - n * 12 * 8) * rapids.TILE_MEMORY_SHARE  # beside the n x 10 mean distances
    assert chunk**2 * 8 <= budget < (chunk + 1) ** 2 * 8  # the largest tile within half the rest
    # cuML's DBSCAN batch: n bytes of dense adjacency + 4 (n + 2) of sparse adjacency a row.
    mbytes = backend._dbscan_batch_mbytes()
    rows_per_batch = (mbytes * 10**6 - n * 5) // (n + 4 * (n + 2))
    assert mbytes * 10**6 <= free * rapids.TILE_MEMORY_SHARE
    assert 5_000 <= rows_per_batch <= n
    # With the card nearly full the tiles shrink to their floor instead of failing.
    backend.available_memory = lambda: 2 * 10**7
    assert backend._silhouette_chunk(X, labels) == rapids.SILHOUETTE_MIN_CHUNK
    backend.available_memory = lambda: 80 * 10**9
    assert backend._silhouette_chunk(X, labels) == rapids.SILHOUETTE_CHUNK


# -- refusals --------------------------------------------------------------------------------

def test_a_stage_that_would_not_fit_is_refused_with_its_option_and_a_size_that_fits(cpu_backend,
                                                                                     monkeypatch):
    # DBSCAN on every one of 200,000 users keeps their neighbourhoods: about 0.7 GiB.
    config = PipelineConfig(backend="cpu", dbscan_sample=None)
    sizes = dict(n_users=200_000, n_components=40, n_excluded=0, embed=False)
    need = resources.dbscan_memory(200_000, 200_000, 40, 20).bytes
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(need // 2))
    with pytest.raises(ResourceLimitError) as caught:
        resources.check_run(config, cpu_backend, **sizes)
    message = str(caught.value)
    assert message.startswith(f"the dbscan stage needs about {need / MiB:.1f} MiB (200,000 ")
    assert f"but {need // 2 / MiB:.1f} MiB is available on {cpu_backend.device} (capped " \
           f"at {need // 2 / MiB:.1f} MiB by {MEMORY_LIMIT_ENV})" in message
    suggested = int(message.split("lower dbscan_sample to about ")[1].split()[0].replace(",", ""))
    assert 80_000 <= suggested < 100_000  # about half the users fit in half the memory
    # The suggested sample passes the same check.
    resources.check_run(PipelineConfig(backend="cpu", dbscan_sample=suggested), cpu_backend,
                        **sizes)


def test_a_memory_error_inside_a_stage_names_the_stage_and_option(cpu_backend):
    timer = StageTimer(cpu_backend)
    with pytest.raises(ResourceLimitError) as caught:
        with timer.stage("dbscan"):
            raise MemoryError("Unable to allocate 12.5 GiB for an array with shape (40000, 40000)")
    message = str(caught.value)
    assert message.startswith(f"the dbscan stage ran out of memory on {cpu_backend.device}")
    assert "Unable to allocate 12.5 GiB" in message and "lower dbscan_sample" in message
    assert isinstance(caught.value.__cause__, MemoryError)
    assert "dbscan" not in timer.seconds  # a failed stage records no time


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return write_instacart(generate_instacart(2_000, seed=5),
                           tmp_path_factory.mktemp("small") / "d", fmt="parquet")


def test_the_cli_refuses_a_run_too_large_before_its_first_fit(small_data, tmp_path, monkeypatch,
                                                              capsys, caplog):
    # 35 MB holds the features and matrices of these 1,700 shoppers (about 25 MB at most), not
    # a 200-neighbour UMAP graph plus umap-learn's exact distances (about 47 MB).
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(35 * 10**6))
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="gpuseg"):
        code = main(["run", "--data", str(small_data), "--out", str(out), "--backend", "cpu",
                     "--umap-neighbors", "200", "-v"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == EXIT_USER_ERROR
    assert err.startswith("gpuseg: error: the umap stage needs about ")
    suggested = int(err.split("lower --umap-sample to about ")[1].split()[0].replace(",", ""))
    assert 100 <= suggested < 1_700
    stages = [r.getMessage().split(":")[0] for r in caplog.records
              if r.getMessage().startswith("stage ")]
    assert stages == ["stage load", "stage features", "stage scale", "stage pca"]
    assert list(tmp_path.iterdir()) == []


def test_gpu_free_memory_counts_what_the_async_pool_keeps_for_reuse():
    """The driver counts the pool's cached blocks as used; the statistics give them back."""
    from types import SimpleNamespace

    from gpuseg.rapids.memory import DeviceMemory

    GiB = 2**30
    own_pool = DeviceMemory(statistics=True, release_threshold=8 * GiB)
    assert own_pool.cached_bytes(None) == 0
    # Below the release threshold the pool keeps its peak; above it, only the threshold.
    assert own_pool.cached_bytes(SimpleNamespace(peak_bytes=6 * GiB, current_bytes=2 * GiB)) \
        == 4 * GiB
    assert own_pool.cached_bytes(SimpleNamespace(peak_bytes=10 * GiB, current_bytes=3 * GiB)) \
        == 5 * GiB
    assert own_pool.cached_bytes(SimpleNamespace(peak_bytes=10 * GiB, current_bytes=9 * GiB)) \
        == 0
    # A resource a dask-cuda worker was started with: what it keeps is not gpuseg's to see.
    kept = DeviceMemory(statistics=True, release_threshold=None)
    assert kept.cached_bytes(SimpleNamespace(peak_bytes=10 * GiB, current_bytes=3 * GiB)) == 0


def test_cpu_silhouette_gives_zero_to_a_shopper_alone_in_its_segment(cpu_backend):
    from sklearn.metrics import silhouette_samples

    X = np.random.default_rng(1).normal(size=(300, 4))
    labels = (X[:, 0] > 0).astype(int)
    labels[7] = 2
    ours = cpu_backend.silhouette_samples(X, labels)
    assert ours[7] == 0.0
    np.testing.assert_allclose(ours, silhouette_samples(X, labels), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="Number of labels is 1"):
        cpu_backend.silhouette_samples(X, np.zeros(300, dtype=int))
