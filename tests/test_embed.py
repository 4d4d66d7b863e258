"""The UMAP map: a layout fitted on a sample, the other users placed with ``transform``.

The CPU backend's transform (``cpu_fallback.umap_transform``) re-implements
umap-learn's recipe with faster parts; each part is checked against
umap-learn's own function, and the whole against umap-learn's transform.
"""
from __future__ import annotations

import _stages
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from cpu_fallback import umap_transform
from cpu_fallback.umap_transform import PlacingUMAP, initial_positions, membership_sigmas, memberships
from gpuseg.config import PipelineConfig
from gpuseg.stages.umap import Umap


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(3_000, n_features=10, centers=5, cluster_std=2.0, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def sorted_neighbours():
    """Sorted neighbour distances and indices of 400 users among 300 fitted ones."""
    rng = np.random.default_rng(3)
    distances = np.sort(rng.gamma(2.0, 1.5, size=(400, 15)), axis=1).astype(np.float32)
    distances[7, 0] = 0.0  # a user that coincides with a fitted one
    indices = np.stack([rng.choice(300, size=15, replace=False) for _ in range(400)])
    return distances, indices


def test_bandwidths_match_umap_learns_bisection(sorted_neighbours):
    from umap.umap_ import smooth_knn_dist

    distances, _ = sorted_neighbours
    # umap-learn's transform lowers local connectivity by one: 0 for the default of 1.
    expected, rho = smooth_knn_dist(distances, 15.0, local_connectivity=0.0)
    assert not rho.any()
    np.testing.assert_allclose(membership_sigmas(distances, 15.0), expected, rtol=1e-5)


def test_memberships_and_starting_points_match_umap_learn(sorted_neighbours):
    from umap.umap_ import compute_membership_strengths, init_graph_transform

    distances, indices = sorted_neighbours
    sigmas = membership_sigmas(distances, 15.0)
    weights = memberships(distances, sigmas)
    rows, cols, vals, _ = compute_membership_strengths(
        indices, distances, sigmas.astype(np.float32), np.zeros(400, np.float32), bipartite=True)
    expected = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(400, 300)).toarray()
    ours = np.zeros((400, 300))
    np.put_along_axis(ours, indices, weights, axis=1)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
    assert weights[7, 0] == 1.0

    embedding = np.random.default_rng(4).normal(size=(300, 2)).astype(np.float32)
    graph = scipy.sparse.csr_matrix(expected)
    np.testing.assert_allclose(initial_positions(indices, weights, embedding),
                               init_graph_transform(graph, embedding), rtol=1e-4, atol=1e-5)
    # The user at distance 0 starts exactly on the fitted user it coincides with.
    np.testing.assert_array_equal(initial_positions(indices, weights, embedding)[7],
                                  embedding[indices[7, 0]])


# The reference fit on the exact graph has no NN-descent index; umap-learn warns it cannot transform.
@pytest.mark.filterwarnings(r"ignore:precomputed_knn\[2\]:UserWarning")
def test_placing_transform_agrees_with_umap_learns(blobs):
    import umap

    X, _ = blobs
    fitted, new = X[:1_000], X[1_000:]
    reference = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1).fit(fitted)
    placing = PlacingUMAP(n_neighbors=15, random_state=0, n_jobs=1).fit(fitted)
    # The fit itself is umap-learn's, untouched, on the exact neighbour graph.
    fitted32 = fitted.astype(np.float32)
    distances, indices = umap_transform.exact_neighbours(fitted32, fitted32, 15)
    on_exact_graph = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1,
                               precomputed_knn=(indices, distances)).fit(fitted)
    np.testing.assert_array_equal(placing.embedding_, on_exact_graph.embedding_)
    # Both transforms place onto the same layout: umap-learn's own fit.
    placing.embedding_ = reference.embedding_.copy()
    ours, theirs = placing.transform(new), reference.transform(new)
    spread = np.ptp(reference.embedding_, axis=0).max()
    shift = np.linalg.norm(ours - theirs, axis=1)
    # Same neighbours, memberships, start and optimiser; only float rounding of the sampling
    # schedule differs, which moves a few users a little.
    assert np.median(shift) < 0.02 * spread
    assert np.percentile(shift, 95) < 0.1 * spread
    assert abs(trustworthiness(new, ours, n_neighbors=10)
               - trustworthiness(new, theirs, n_neighbors=10)) < 0.01
    # Seeded: the same call gives the same map.
    np.testing.assert_array_equal(placing.transform(new), ours)


def _embed(X, backend, *, seed: int, fit_sample: int, sample: int | None = None):
    """The map stage over ``X`` as PCA scores (15 neighbours, min_dist 0.1)."""
    config = PipelineConfig(backend=backend.name, seed=seed, umap_neighbors=15, umap_min_dist=0.1,
                            umap_fit_sample=fit_sample, umap_sample=sample)
    return _stages.run(Umap(), _stages.state(X, backend, config=config))


def test_embedding_fitted_on_a_sample_places_every_other_user(backend, blobs):
    X, y = blobs
    emb = _embed(X, backend, seed=0, fit_sample=800)
    coords = backend.to_host(emb.coords)
    assert coords.shape == (3_000, 2) and np.isfinite(coords).all()
    assert emb.sample_size is None and emb.fit_sample_size == 800
    assert emb.to_dict()["fit_sample_size"] == 800
    assert emb.trustworthiness > 0.9
    # Placed users land among fitted users of their own blob.
    fit_rows = np.sort(np.random.default_rng(2).choice(3_000, size=800, replace=False))
    placed = np.setdiff1d(np.arange(3_000), fit_rows)
    d2 = ((coords[placed, None, :] - coords[None, fit_rows, :]) ** 2).sum(axis=2)
    nearest = fit_rows[d2.argmin(axis=1)]
    assert (y[nearest] == y[placed]).mean() > 0.95


def test_a_fit_sample_within_an_embedded_sample(cpu_backend, blobs):
    X, _ = blobs
    emb = _embed(X, cpu_backend, seed=1, fit_sample=500, sample=1_200)
    embedded = np.isfinite(emb.coords).all(axis=1)
    assert embedded.sum() == 1_200 and emb.sample_size == 1_200 and emb.fit_sample_size == 500


def test_a_fit_sample_at_least_the_embedded_users_fits_them_all(cpu_backend, blobs):
    X, _ = blobs
    emb = _embed(X[:600], cpu_backend, seed=0, fit_sample=600)
    assert emb.fit_sample_size is None and np.isfinite(emb.coords).all()


def test_placement_is_deterministic_on_cpu(cpu_backend, blobs):
    X, _ = blobs
    runs = [_embed(X, cpu_backend, seed=5, fit_sample=700)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].coords, runs[1].coords)
    assert runs[0].trustworthiness == runs[1].trustworthiness


def test_a_fit_below_the_bound_gets_exact_neighbours_and_a_good_layout():
    from sklearn.neighbors import NearestNeighbors

    X, y = make_blobs(5_000, n_features=10, centers=5, cluster_std=2.0, random_state=1)
    reducer = PlacingUMAP(n_neighbors=15, random_state=0, n_jobs=1).fit(X)
    X32 = X.astype(np.float32)
    _, expected = NearestNeighbors(n_neighbors=15, algorithm="brute").fit(X32).kneighbors(X32)
    assert (reducer._knn_indices == expected).mean() > 0.999  # ties may swap equal distances
    assert reducer.precomputed_knn == (None, None, None)  # the user's setting is left as it was
    sample = np.random.default_rng(0).choice(len(X), 2_000, replace=False)
    assert trustworthiness(X[sample], reducer.embedding_[sample], n_neighbors=10) > 0.9


def test_umap_kernels_compile_once_per_installation(tmp_path):
    """A second process loads umap-learn's compiled kernels from gpuseg's cache folder."""
    import os
    import subprocess
    import sys

    script = ("import numpy as np\n"
              "from cpu_fallback.umap_transform import PlacingUMAP\n"
              "X = np.random.default_rng(0).normal(size=(300, 5))\n"
              "PlacingUMAP(n_neighbors=10, random_state=0, n_jobs=1, n_epochs=20).fit(X[:250])"
              ".transform(X[250:])\n")
    env = {**os.environ, "GPUSEG_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    env.pop("NUMBA_CACHE_DIR", None)

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)
        return done.stdout + done.stderr

    first, second = run(), run()
    folders = list((tmp_path / "numba").iterdir())
    assert len(folders) == 1 and "umap-learn-" in folders[0].name and "numba-" in folders[0].name

    def umap_kernels(output: str, event: str) -> set[str]:
        # "[cache] data saved to '<folder>/umap_<hash>/layouts.optimize_layout_euclidean-...'"
        return {line.rsplit("/", 1)[1].split("-")[0] for line in output.splitlines()
                if event in line and str(folders[0]) in line and "/umap_" in line}

    kernels = {"layouts._optimize_layout_euclidean_single_epoch", "umap_.smooth_knn_dist",
               "umap_.compute_membership_strengths"}
    assert kernels <= umap_kernels(first, "data saved")
    assert umap_kernels(second, "data saved") == set()
    assert kernels <= umap_kernels(second, "data loaded")

    # gpuseg's own placement kernel lives in the same folder, compiled once too.
    def placement(output: str, event: str) -> bool:
        return any(event in line and str(folders[0]) in line and "placement._place_users" in line
                   for line in output.splitlines())

    assert placement(first, "data saved") and not placement(second, "data saved")
    assert placement(second, "data loaded")


def test_umap_kernels_are_built_serial_into_a_folder_named_for_it(tmp_path):
    """A fit's kernels are compiled without parfors (cheaper to compile, no thread-dependent
    rounding), in a folder apart from machine code built with them."""
    import os
    import subprocess
    import sys

    from cpu_fallback import numba_cache

    script = ("import sys\n"
              "from numba.core.registry import CPUDispatcher\n"
              "from cpu_fallback.umap_transform import PlacingUMAP\n"
              "kernels = {f'{m}.{n}': f for m in list(sys.modules) if m.split('.')[0] == 'umap'\n"
              "           for n, f in vars(sys.modules[m]).items() if isinstance(f, CPUDispatcher)}\n"
              "print(len(kernels), sorted(k for k, f in kernels.items()\n"
              "                           if f.targetoptions.get('parallel')))\n")
    env = {**os.environ, "GPUSEG_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True)
    count, parallel = done.stdout.strip().split(" ", 1)
    assert int(count) > 20 and parallel == "[]"  # 119 in umap-learn 0.5.12
    assert f"_{numba_cache.BUILD}_" in numba_cache.cache_folder(tmp_path).name


def test_an_upgrade_of_numba_or_umap_learn_starts_a_new_cache_folder(monkeypatch, tmp_path):
    from importlib import metadata

    from cpu_fallback import numba_cache

    real = metadata.version
    before = numba_cache.cache_folder(tmp_path)
    for dist in numba_cache.VERSIONED:
        monkeypatch.setattr(metadata, "version",
                            lambda name, dist=dist: "99.0" if name == dist else real(name))
        after = numba_cache.cache_folder(tmp_path)
        assert after != before and f"{dist}-99.0" in after.name


def test_a_second_prepare_starts_no_second_warm_up(monkeypatch):
    """The run command prepares the backend before segment() prepares it again."""
    from cpu_fallback import numba_cache
    from cpu_fallback.backend import CpuBackend

    started = []
    monkeypatch.setattr(numba_cache, "start_warm_up", lambda: started.append(1) or object())
    backend = CpuBackend()
    backend.prepare(embed=True)
    backend.prepare(embed=True)
    assert started == [1]


def test_a_cold_cache_is_compiled_in_the_background_for_the_run_to_load(tmp_path, monkeypatch):
    """The CPU backend's warm-up compiles every kernel a map uses while the run goes on."""
    import os
    import subprocess
    import sys

    from cpu_fallback import numba_cache

    monkeypatch.setenv("GPUSEG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert not numba_cache.is_warm()
    warm_up = numba_cache.start_warm_up()
    assert warm_up is not None
    numba_cache.wait_for(warm_up)
    assert warm_up.returncode == 0 and numba_cache.is_warm()
    assert numba_cache.start_warm_up() is None  # warm: nothing to start
    # A run's map stage, afterwards: every umap-learn kernel is loaded, none compiled.
    script = ("import numpy as np\n"
              "from cpu_fallback.backend import CpuBackend\n"
              "X = np.random.default_rng(1).normal(size=(700, 40))\n"
              "reducer = CpuBackend().UMAP(n_neighbors=15, min_dist=0.1, random_state=0)\n"
              "reducer.fit(X[:600]).transform(X[600:])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "NUMBA_DEBUG_CACHE": "1"})
    output = done.stdout + done.stderr
    umap_lines = [line for line in output.splitlines() if "/umap_" in line]
    assert any("data loaded" in line for line in umap_lines)
    assert not any("data saved" in line for line in umap_lines)
