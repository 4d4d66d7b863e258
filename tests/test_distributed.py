"""One run across Dask workers: the single-process answer, through worker deaths and bad input.

Every test runs on a cluster of two worker processes started once for the
module (a LocalCUDACluster of up to two GPUs for the ``gpu`` case, which skips
with its reason where RAPIDS, dask-cuda or a device is missing). Data sets are
a few thousand synthetic shoppers; nothing here measures time.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _layout import hidden_entries
from sklearn.metrics import adjusted_rand_score

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

from gpuseg.cli import main  # noqa: E402
from gpuseg.config import PipelineConfig  # noqa: E402
from gpuseg.data import load_instacart  # noqa: E402
from gpuseg.data.partitions.manifest import MANIFEST_FILE  # noqa: E402
from gpuseg.data.partitions.source import find_partitioned, read_catalog  # noqa: E402
from gpuseg.data.synth import write_partitioned  # noqa: E402
from gpuseg.distributed import tasks  # noqa: E402
from gpuseg.distributed.rows import partition_rows  # noqa: E402
from gpuseg.errors import BackendUnavailableError, DataValidationError, ResourceLimitError  # noqa: E402
from gpuseg.features import compute_features as single_process_features  # noqa: E402
from gpuseg.features import feature_columns  # noqa: E402
from gpuseg.model import project_features  # noqa: E402
from gpuseg.pipeline import segment  # noqa: E402
from gpuseg.registry import dask_engine  # noqa: E402
from gpuseg.vocabulary import PERSONA_NAMES  # noqa: E402

N_USERS = 3_000
#: Light settings for both runs of a comparison; the stages are the same as by default.
LIGHT = dict(seed=7, n_init=3, sweep_n_init=1, stability_seeds=2, bootstrap_rounds=1,
             hierarchical_micro_clusters=100)


@pytest.fixture(scope="module")
def dask_backend(backend, request):
    """Each backend in turn (conftest's ``backend``), skipped where its Dask engine is missing.

    Under ``--require-gpu`` (the device check) a GPU without its Dask engine fails instead:
    a skip there would hide a staging without the Dask stack.
    """
    try:
        dask_engine(backend)
    except BackendUnavailableError as exc:
        if backend.name == "gpu" and request.config.getoption("--require-gpu"):
            pytest.fail(f"GPU Dask engine unavailable under --require-gpu: {exc}", pytrace=False)
        pytest.skip(str(exc))
    return backend


@pytest.fixture(scope="module")
def cluster(dask_backend):
    n_workers = 2
    if dask_backend.name == "gpu":
        from dask_cuda.utils import get_n_gpus

        n_workers = min(2, get_n_gpus())
    with dask_engine(dask_backend).local_cluster(n_workers, None) as local:
        yield local


@pytest.fixture(scope="module")
def strong(tmp_path_factory) -> Path:
    return write_partitioned(N_USERS, tmp_path_factory.mktemp("strong") / "data", partitions=4,
                             seed=3, separation="strong")


def _config(backend, cluster, **overrides) -> PipelineConfig:
    return PipelineConfig(backend=backend.name, scheduler=cluster.scheduler_address,
                          **{**LIGHT, **overrides})


@pytest.fixture(scope="module")
def distributed_run(strong, cluster, dask_backend):
    return segment(strong, _config(dask_backend, cluster), backend=dask_backend, embed=False)


def test_features_mapped_over_partitions_equal_the_single_process_table(strong, cluster,
                                                                         dask_backend):
    source = find_partitioned(strong)
    catalog = read_catalog(source)
    names = feature_columns(catalog["aisles"]["aisle_id"])
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client, \
            client.as_current():
        rows, X, user_ids, summaries = partition_rows(
            client, dask_backend, source, client.submit(read_catalog, source), min_orders=5,
            feature_names=names)
        mapped = rows.host(X)
        kept = client.gather(rows.parts)
    whole = dask_backend.to_host(single_process_features(
        load_instacart(strong, backend=dask_backend, cache=False), dask_backend).table)
    assert list(whole.columns) == names
    assert float(np.abs(mapped - whole.to_numpy()).max()) <= 1e-12
    np.testing.assert_array_equal(user_ids, whole.index)
    # Each block keeps its users and orders, not a second copy of its features.
    assert all(isinstance(part, tasks.PartitionOrders) for part in kept)
    np.testing.assert_array_equal(
        np.concatenate([dask_backend.to_numpy(p.user_ids, np.int64) for p in kept]), whole.index)
    assert sum(s.n_excluded for s in summaries) == (
        sum(s.n_with_history for s in summaries) - len(whole))


def test_labels_agree_with_the_single_process_run_and_carry_the_same_personas(
        strong, distributed_run, dask_backend):
    single = segment(strong, PipelineConfig(backend=dask_backend.name, **LIGHT),
                     backend=dask_backend, embed=False)
    a, b = single.segments, distributed_run.segments
    np.testing.assert_array_equal(a["user_id"], b["user_id"])
    assert adjusted_rand_score(a["segment"], b["segment"]) >= 0.99
    assert distributed_run.model.persona_names == single.model.persona_names
    assert set(distributed_run.model.persona_names) == set(PERSONA_NAMES)
    facts = distributed_run.metrics.to_dict()["distributed"]
    assert facts["workers"] >= 1 and facts["partitions"] == 4 and not facts["started"]
    assert set(distributed_run.timings) >= {"features", "scale", "pca", "kmeans", "dbscan",
                                            "personas"}
    assert distributed_run.activity.sum() == single.activity.sum()
    # The catalog a served model needs, read on the client from the partitioned folder.
    for name in ("product_ids", "product_aisles", "product_departments", "product_organic",
                 "aisle_ids", "department_ids", "aisle_names", "department_names"):
        np.testing.assert_array_equal(getattr(distributed_run.model.catalog, name),
                                      getattr(single.model.catalog, name))


def test_kmeans_inertia_is_every_users_squared_distance_to_its_saved_centroid(
        strong, distributed_run, cpu_backend):
    model, segments = distributed_run.model, distributed_run.segments
    table = single_process_features(load_instacart(strong, backend=cpu_backend, cache=False),
                                    cpu_backend).table.loc[segments["user_id"]]
    projected = project_features(model, table, cpu_backend)
    own = model.centroids[segments["segment"].to_numpy()]
    expected = float(((projected - own) ** 2).sum())
    assert distributed_run.metrics.to_dict()["kmeans"]["inertia"] == pytest.approx(expected, rel=1e-9)


def test_every_sampled_stage_gives_the_single_process_answer_on_realistic_shoppers(
        cluster, dask_backend, tmp_path_factory):
    """One orchestrator: the same stages on the same seeded samples, whichever source holds
    the rows. Every stage's sample is smaller than the users here, so each one's fit on a
    sample and its map over every user are exercised on both sources."""
    folder = write_partitioned(5_000, tmp_path_factory.mktemp("realistic") / "data",
                               partitions=4, seed=8, separation="realistic")
    sampled = dict(sweep_sample=1_500, sweep_score_sample=600, kmeans_sample=1_500,
                   certainty_sample=1_200, silhouette_sample=1_000, stability_sample=800,
                   dbscan_sample=1_000, importance_sample=2_000, rules_sample=1_000,
                   umap_fit_sample=700)
    single = segment(folder, PipelineConfig(backend=dask_backend.name, **LIGHT, **sampled),
                     backend=dask_backend)
    spread = segment(folder, _config(dask_backend, cluster, **sampled), backend=dask_backend)
    a, b = single.segments, spread.segments
    np.testing.assert_array_equal(a["user_id"], b["user_id"])
    for column in ("segment", "second_segment", "hierarchical", "dbscan"):
        assert (a[column] == b[column]).mean() >= 0.999, column
    np.testing.assert_allclose(b["membership"], a["membership"], atol=1e-6)
    np.testing.assert_allclose(b["silhouette"], a["silhouette"], atol=1e-6)
    assert spread.model.persona_names == single.model.persona_names
    m_a, m_b = single.metrics.to_dict(), spread.metrics.to_dict()
    assert m_b["kmeans"]["init_sample_size"] == 1_500 and m_b["kmeans"]["lloyd_iterations"] >= 1
    assert m_b["kmeans"]["inertia"] == pytest.approx(m_a["kmeans"]["inertia"], rel=1e-9)
    assert m_b["rules"] == m_a["rules"] and m_b["importance"]["sample_size"] == 2_000
    # The map is fitted on the same users; placements differ only by the blocks they ran in.
    assert m_b["umap"]["fit_sample_size"] == m_a["umap"]["fit_sample_size"] == 700
    assert abs(m_b["umap"]["trustworthiness"] - m_a["umap"]["trustworthiness"]) < 0.05


def test_sampled_memberships_and_hdbscan_match_the_single_process_run(strong, cluster,
                                                                       dask_backend):
    """The certainty and HDBSCAN fitted on gathered samples, every other user in a map."""
    sampled = dict(certainty_sample=1_000, density="hdbscan", hdbscan_sample=1_000)
    single = segment(strong, PipelineConfig(backend=dask_backend.name, **LIGHT, **sampled),
                     backend=dask_backend, embed=False)
    spread = segment(strong, _config(dask_backend, cluster, **sampled), backend=dask_backend,
                     embed=False)
    a, b = single.segments, spread.segments
    assert adjusted_rand_score(a["segment"], b["segment"]) >= 0.99
    same = (a["segment"] == b["segment"]).to_numpy()
    np.testing.assert_allclose(b["membership"].to_numpy()[same],
                               a["membership"].to_numpy()[same], atol=1e-6)
    assert spread.metrics.to_dict()["certainty"]["fit_sample"] == 1_000
    assert b["membership"].mean() >= 0.9  # strong personas: sure assignments
    assert adjusted_rand_score(a["hdbscan"], b["hdbscan"]) >= 0.99
    assert "mutual reachability" in spread.metrics.to_dict()["hdbscan"]["assignment"]


def test_a_worker_killed_mid_run_is_recomputed_and_the_labels_stay(strong, cluster,
                                                                    distributed_run,
                                                                    dask_backend):
    if len(cluster.workers) < 2:
        # One GPU gives one worker: killing it leaves no worker to recompute on until its
        # nanny restarts it, and the restarted GPU worker must build its CUDA context and
        # cuML's NCCL communicators anew, which is not what this test is about.
        pytest.skip("needs two workers to kill one of them (one GPU gives one)")
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        victim = min(client.run(os.getpid).values())
        killed = []

        def kill_a_worker(stage: str) -> None:
            # The features and their projection sit in the workers' memory by now.
            if stage == "kmeans" and not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        again = segment(strong, _config(dask_backend, cluster), backend=dask_backend,
                        progress=kill_a_worker, embed=False)
        client.wait_for_workers(len(cluster.workers))
        assert victim not in client.run(os.getpid).values()
    assert killed == [victim]
    np.testing.assert_array_equal(again.segments["segment"], distributed_run.segments["segment"])


def test_a_corrupt_partition_file_is_named_with_its_row(strong, cluster, dask_backend, tmp_path):
    folder = shutil.copytree(strong, tmp_path / "bad")
    # Without its manifest (a hand-made layout): the values themselves are checked on the workers.
    (folder / MANIFEST_FILE).unlink()
    path = folder / "orders" / "part-00002.parquet"
    orders = pd.read_parquet(path)
    orders.loc[17, "order_dow"] = 9
    pq.write_table(pa.Table.from_pandas(orders, preserve_index=False), path)
    with pytest.raises(DataValidationError) as error:
        segment(folder, _config(dask_backend, cluster), backend=dask_backend, embed=False)
    assert str(error.value) == f"{path}, column 'order_dow', row 18: 9 is outside 0-6"


def test_an_unreadable_partition_file_is_named(strong, cluster, dask_backend, tmp_path):
    folder = shutil.copytree(strong, tmp_path / "truncated")
    (folder / MANIFEST_FILE).unlink()
    path = folder / "order_products__prior" / "part-00001.parquet"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataValidationError, match=f"{path}: not a readable parquet file"):
        segment(folder, _config(dask_backend, cluster), backend=dask_backend, embed=False)


def test_a_partition_file_changed_in_place_is_caught_by_its_checksum_on_the_worker(
        strong, cluster, dask_backend, tmp_path):
    folder = shutil.copytree(strong, tmp_path / "flipped")
    path = folder / "order_products__prior" / "part-00001.parquet"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, same footer: only the bytes' checksum tells
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match=f"{path}: its bytes do not match the SHA-256"):
        segment(folder, _config(dask_backend, cluster), backend=dask_backend, embed=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_scheduler_exits_2_naming_it_and_writes_nothing(strong, tmp_path,
                                                                        capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    code = main(["run", "--data", str(strong), "--out", str(tmp_path / "run"),
                 "--scheduler", address, "--backend", "cpu"])
    assert code == 2
    assert f"could not reach a Dask scheduler at {address}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_worker_out_of_memory_is_an_error_naming_partitions(dask_backend, tmp_path):
    if dask_backend.name == "gpu":
        pytest.skip("a GPU worker's limit is device memory, which this test cannot shrink")
    import dask

    data = write_partitioned(8_000, tmp_path / "one-partition", partitions=1, seed=1)
    config = PipelineConfig(backend="cpu", workers=1, worker_memory=300 << 20, **LIGHT)
    # One death is enough to tell (the default retries on three more workers first).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with pytest.raises(ResourceLimitError, match="the features stage failed") as error:
            segment(data, config, backend=dask_backend, embed=False)
    assert "--partitions" in str(error.value) and "1 partition each" in str(error.value)


def test_the_cli_runs_across_local_workers_and_writes_the_whole_run_directory(tmp_path,
                                                                              dask_backend):
    if dask_backend.name == "gpu":
        pytest.skip("the CLI case runs once, on the CPU")
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["synth", "--users", "1500", "--partitions", "3", "--out", str(data)]) == 0
    assert main(["run", "--data", str(data), "--out", str(run), "--workers", "2",
                 "--backend", "cpu", "--umap-fit-sample", "500", "--stability-sample", "500",
                 "--dbscan-sample", "500", "--sweep-sample", "800", "-q"]) == 0
    files = {path.name for path in run.iterdir()}
    assert files >= {"segments.parquet", "profiles.csv", "metrics.json", "model", "report.html",
                     "figures", "dask-performance-report.html"}
    metrics = json.loads((run / "metrics.json").read_text())
    facts = metrics["distributed"]
    assert facts["started"] and facts["workers"] == 2 and facts["partitions"] == 3
    assert facts["scheduler"].startswith("tcp://")
    assert set(facts["peak_rss_bytes"]) == {"client", "scheduler", "workers"}
    assert metrics["config"]["workers"] == 2
    assert set(metrics["timings"]) >= {"features", "kmeans", "umap"}
    segments = pd.read_parquet(run / "segments.parquet")
    assert np.isfinite(segments[["umap_x", "umap_y"]].to_numpy()).all()
    assert metrics["umap"]["fit_sample_size"] == 500


def test_gpuseg_partition_rewrites_kaggle_csvs_as_partitions_of_whole_users(
        cluster, dask_backend, cpu_backend, tmp_path, monkeypatch, capsys):
    if dask_backend.name == "gpu":
        pytest.skip("gpuseg partition runs on CPU workers")
    from gpuseg.data.synth import generate_instacart, write_instacart
    from gpuseg.distributed import shuffle

    # Small CSV blocks, so that a bad row sits in a block after the first.
    monkeypatch.setattr(shuffle, "CSV_BLOCK_BYTES", 1 << 18)

    flat = write_instacart(generate_instacart(1_200, seed=6), tmp_path / "flat", fmt="csv")
    out = tmp_path / "parts"
    assert main(["partition", "--data", str(flat), "--out", str(out), "--partitions", "3",
                 "--scheduler", cluster.scheduler_address, "-q"]) == 0
    orders = [pd.read_parquet(out / "orders" / f"part-0000{i}.parquet") for i in range(3)]
    assert all(set(o["user_id"] % 3) == {i} for i, o in enumerate(orders))
    by_folder = [single_process_features(load_instacart(folder, backend=cpu_backend,
                                                        cache=False), cpu_backend).table
                 for folder in (flat, out)]
    pd.testing.assert_frame_equal(by_folder[1].sort_index(), by_folder[0], check_exact=True)

    # An existing folder is refused before any work; --force replaces it whole.
    again = ["partition", "--data", str(flat), "--out", str(out), "--partitions", "2",
             "--scheduler", cluster.scheduler_address, "-q"]
    assert main(again) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main([*again, "--force"]) == 0
    assert sorted(p.name for p in (out / "orders").iterdir()) == ["part-00000.parquet",
                                                                  "part-00001.parquet"]

    table = pd.read_csv(flat / "order_products__prior.csv")
    bad_row = len(table) - 10
    table.loc[bad_row, "reordered"] = 3
    table.to_csv(flat / "order_products__prior.csv", index=False)
    with pytest.raises(DataValidationError) as error:
        shuffle.repartition(flat, tmp_path / "bad", partitions=3,
                                config=PipelineConfig(scheduler=cluster.scheduler_address))
    assert str(error.value) == (f"{flat / 'order_products__prior.csv'}, column 'reordered', "
                                f"row {bad_row + 1}: 3 is outside 0-1")
    assert not (tmp_path / "bad").exists()
    assert hidden_entries(tmp_path) == []  # no staging left


def _scaled_rows(backend, X, factors):
    """A block function with a large parameter: each row times ``factors[row % len]``."""
    return X * backend.xp.asarray(factors)[: X.shape[1]]


def _column_sums(backend, X, model):
    """Block partial sums, given a (large, unused) fitted object."""
    return backend.to_numpy(X.sum(axis=0))


def _scaled_by_model(backend, X, model):
    """The same with the factors inside a fitted object, whose ``sizeof`` Dask underestimates."""
    return _scaled_rows(backend, X, model.factors)


def test_large_block_parameters_are_scattered_not_sent_in_the_graph(cluster, dask_backend,
                                                                    recwarn):
    """A fitted map is tens of MB: in the graph it would be sent with every computation (Dask
    warns from 10 MB); scattered once it is not."""
    import dask.array as da

    from gpuseg.distributed.rows import SCATTER_FROM_BYTES, DaskRows

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client, \
            client.as_current():
        X = client.persist(da.from_array(np.arange(40.0).reshape(20, 2), chunks=(5, 2)))
        rows = DaskRows(client, dask_backend, (5, 5, 5, 5), parts=[None] * 4)
        large = np.full(2 * SCATTER_FROM_BYTES // 8, 3.0)
        mapped = rows.map(_scaled_rows, X, width=2, factors=large)
        np.testing.assert_array_equal(rows.host(mapped), np.arange(40.0).reshape(20, 2) * 3)
        assert len(rows._scattered) == 1  # the future, kept for recomputation
        small = rows.map(_scaled_rows, X, width=2, factors=np.full(2, 2.0))
        np.testing.assert_array_equal(rows.host(small), np.arange(40.0).reshape(20, 2) * 2)
        assert len(rows._scattered) == 1
        # A fitted model is an object: Dask's sizeof sees a few dozen bytes, the wire all of it.
        model = SimpleNamespace(factors=np.full(2 * SCATTER_FROM_BYTES // 8, 4.0))
        by_model = rows.map(_scaled_by_model, X, width=2, model=model)
        np.testing.assert_array_equal(rows.host(by_model), np.arange(40.0).reshape(20, 2) * 4)
        assert len(rows._scattered) == 2
        total = rows.sum(_column_sums, X, model=model)
        np.testing.assert_array_equal(total, np.arange(40.0).reshape(20, 2).sum(axis=0))
        assert len(rows._scattered) == 3
    assert not [w for w in recwarn if "large graph" in str(w.message)]


def test_a_stage_that_lost_scattered_data_with_a_worker_runs_again(monkeypatch):
    from distributed.client import FutureCancelledError

    from gpuseg.distributed import session as session_module
    from gpuseg.distributed.session import DaskSession

    class Flaky:
        name = "flaky"
        runs = 0

    def run_stage_once_failing(stage, state):
        stage.runs += 1
        if stage.runs == 1:
            raise FutureCancelledError("x", reason="lost with its worker")
        return "done"

    monkeypatch.setattr(session_module, "run_stage", run_stage_once_failing)
    session = DaskSession(rows=None, features=None, timer=None, source=None, info=None)
    stage = Flaky()
    assert session.run(stage, None) == "done" and stage.runs == 2


def test_no_check_sizes_the_client_for_matrices_left_on_the_workers(strong, cluster, dask_backend,
                                                                   monkeypatch):
    """Scaling and PCA across workers hold users x features blocks on the workers, so the
    one-process estimate of those matrices (which refused a 30x run on a client with 13 GiB
    free) is not asked of the client; the one-process run still asks it."""
    from gpuseg import resources

    asked = []

    def refuse(n_users, n_features, backend):
        asked.append(n_users)
        raise ResourceLimitError("the preprocess stage needs more")

    monkeypatch.setattr(resources, "check_preprocess", refuse)
    with pytest.raises(ResourceLimitError, match="preprocess"):
        segment(strong, PipelineConfig(backend=dask_backend.name, **LIGHT), backend=dask_backend,
                embed=False)
    assert asked
    spread = segment(strong, _config(dask_backend, cluster), backend=dask_backend, embed=False)
    assert len(asked) == 1 and len(spread.segments) > 0
