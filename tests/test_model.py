"""The saved model: pickle-free files, exact round trip, assignment without refitting."""
from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from _fake_result import demo_run, fake_features, fake_result, format3_model, kmeans_model

from gpuseg.assign import assign, assign_users
from gpuseg.errors import GpusegError
from gpuseg.model import ARRAYS_FILE, META_FILE, load_model, save_model

ARRAY_NAMES = ("scaler_mean", "scaler_scale", "pca_mean", "pca_components", "centroids")
MIXTURE_ARRAYS = ("mixture_basis", "mixture_weights", "mixture_means",
                  "mixture_precisions_cholesky")


@pytest.fixture(scope="module")
def fake():
    return fake_result()


def test_saved_model_is_json_plus_npz_without_pickles(fake, tmp_path):
    folder = save_model(fake.model, tmp_path / "model", fitted_on={"backend": "cpu", "device": "test"})
    assert sorted(p.name for p in folder.iterdir()) == [ARRAYS_FILE, META_FILE]
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted(ARRAY_NAMES)
        assert all(arrays[name].dtype == np.float64 for name in arrays.files)
    with zipfile.ZipFile(folder / ARRAYS_FILE) as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}.npy" for name in ARRAY_NAMES)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["feature_names"] == list(fake.model.feature_names)
    assert meta["persona_names"] == list(fake.model.persona_names)
    assert meta["min_orders"] == 3 and meta["k"] == 3 and meta["n_components"] == 3
    assert meta["fitted_on"] == {"backend": "cpu", "device": "test"}
    assert meta["gpuseg_version"] and meta["format_version"] == 4
    assert meta["mixture"] is None
    # The certainty is K + 2 numbers (no short-history calibration in this model).
    assert meta["certainty"] == fake.model.certainty.to_dict()
    assert len(meta["certainty"]["intercepts"]) == 3 and meta["certainty"]["short_history"] == {}


def test_round_trip_gives_back_identical_arrays_and_names(fake, tmp_path):
    loaded = load_model(save_model(fake.model, tmp_path))
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fake.model, name))
    assert loaded.feature_names == fake.model.feature_names
    assert loaded.persona_names == fake.model.persona_names
    assert loaded.min_orders == fake.model.min_orders
    assert loaded.certainty.to_dict() == fake.model.certainty.to_dict()
    np.testing.assert_array_equal(loaded.certainty.intercepts, fake.model.certainty.intercepts)
    assert loaded.mixture is None


def test_an_older_models_mixture_round_trips_and_still_gives_memberships(fake, tmp_path,
                                                                         cpu_backend):
    from gpuseg.model import memberships, project_features

    legacy = format3_model(fake)
    folder = save_model(legacy, tmp_path)
    with np.load(folder / ARRAYS_FILE) as arrays:
        assert sorted(arrays.files) == sorted(ARRAY_NAMES + MIXTURE_ARRAYS)
    loaded = load_model(folder)
    assert loaded.certainty is None and loaded.gives_memberships
    for name in ("basis", "weights", "means", "precisions_cholesky"):
        np.testing.assert_array_equal(getattr(loaded.mixture, name), getattr(legacy.mixture, name))
    projected = project_features(loaded, fake_features(), cpu_backend)
    own, _, _ = memberships(loaded, projected, fake.segments["segment"].to_numpy(), cpu_backend)
    assert ((own > 0) & (own <= 1)).all()


def test_a_model_without_a_certainty_or_mixture_says_it_gives_no_memberships(fake, tmp_path,
                                                                             cpu_backend):
    from gpuseg.model import memberships, project_features

    bare = replace(fake.model, certainty=None)
    loaded = load_model(save_model(bare, tmp_path))
    assert loaded.certainty is None and not loaded.gives_memberships
    projected = project_features(loaded, fake_features(), cpu_backend)
    with pytest.raises(GpusegError, match="neither a certainty nor a Gaussian mixture"):
        memberships(loaded, projected, assign(loaded, fake_features(), cpu_backend), cpu_backend)


def test_memberships_from_the_model_equal_the_runs(fake, cpu_backend):
    from gpuseg.model import memberships, project_features

    projected = project_features(fake.model, fake_features(), cpu_backend)
    own, second, second_p = memberships(fake.model, projected, fake.segments["segment"].to_numpy(),
                                        cpu_backend)
    np.testing.assert_allclose(own, fake.segments["membership"], atol=1e-9)
    np.testing.assert_array_equal(second, fake.segments["second_segment"])
    np.testing.assert_allclose(second_p, fake.segments["second_membership"], atol=1e-9)


def test_assign_reproduces_the_labels_the_model_was_fitted_with(fake, cpu_backend):
    segments = assign(fake.model, fake_features(), cpu_backend)
    assert segments.dtype == np.int32
    np.testing.assert_array_equal(segments, fake.segments["segment"].to_numpy())


def test_assign_takes_columns_by_name_not_position(fake, cpu_backend):
    features = fake_features()
    shuffled = features[list(features.columns[::-1])].assign(unrelated=1.0)
    np.testing.assert_array_equal(assign(fake.model, shuffled, cpu_backend),
                                  fake.segments["segment"].to_numpy())


def test_a_capped_model_clips_standardised_values_before_projecting(fake, cpu_backend, tmp_path):
    """Naive reference: standardise, clip at the cap, project; the cap survives a round trip."""
    capped = load_model(save_model(replace(fake.model, feature_cap=0.5), tmp_path))
    assert capped.feature_cap == 0.5
    X = fake_features().to_numpy()
    z = np.clip((X - capped.scaler_mean) / capped.scaler_scale, -0.5, 0.5)
    projected = (z - capped.pca_mean) @ capped.pca_components.T
    distances = np.linalg.norm(projected[:, None, :] - capped.centroids[None, :, :], axis=2)
    assert (np.abs((X - capped.scaler_mean) / capped.scaler_scale) > 0.5).any()
    np.testing.assert_array_equal(assign(capped, fake_features(), cpu_backend),
                                  distances.argmin(axis=1))


def test_assign_is_nearest_centroid_in_the_models_pca_space(fake, cpu_backend):
    """Naive reference: project by hand, then the closest centroid by Euclidean distance."""
    m = fake.model
    X = fake_features().to_numpy()
    projected = ((X - m.scaler_mean) / m.scaler_scale - m.pca_mean) @ m.pca_components.T
    distances = np.linalg.norm(projected[:, None, :] - m.centroids[None, :, :], axis=2)
    np.testing.assert_array_equal(assign(m, fake_features(), cpu_backend), distances.argmin(axis=1))


@pytest.mark.gpu
def test_a_cpu_fitted_model_assigns_the_same_segments_on_the_gpu(fake, gpu_backend):
    features = gpu_backend.from_host(fake_features())
    on_gpu = gpu_backend.to_host(assign(fake.model, features, gpu_backend))
    np.testing.assert_array_equal(on_gpu, fake.segments["segment"].to_numpy())


@pytest.mark.parametrize("damage", ["no folder", "no json", "bad json", "old format",
                                    "format 1", "no npz", "truncated npz", "missing array",
                                    "missing mixture array", "pickled array", "wrong shape"])
def test_a_missing_or_damaged_model_is_a_one_line_user_error(fake, tmp_path, damage):
    model = format3_model(fake) if damage == "missing mixture array" else fake.model
    folder = save_model(model, tmp_path / "model")
    meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
    with np.load(arrays_path) as saved:
        arrays = {name: saved[name] for name in saved.files}
    if damage == "no folder":
        folder = tmp_path / "elsewhere"
    elif damage == "no json":
        meta_path.unlink()
    elif damage == "bad json":
        meta_path.write_text("{not json")
    elif damage == "old format":
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "format_version": 0}))
    elif damage == "format 1":  # written before the mixture was kept: refused, with the fix
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "format_version": 1}))
    elif damage == "no npz":
        arrays_path.unlink()
    elif damage == "truncated npz":
        arrays_path.write_bytes(arrays_path.read_bytes()[:100])
    elif damage == "missing array":
        np.savez(arrays_path, **{k: v for k, v in arrays.items() if k != "centroids"})
    elif damage == "missing mixture array":
        np.savez(arrays_path, **{k: v for k, v in arrays.items() if k != "mixture_means"})
    elif damage == "pickled array":
        np.savez(arrays_path, **{**arrays, "centroids": np.array([{"a": 1}], dtype=object)})
    elif damage == "wrong shape":
        np.savez(arrays_path, **{**arrays, "centroids": arrays["centroids"][:, :1]})
    with pytest.raises(GpusegError) as caught:
        load_model(folder)
    assert str(folder) in str(caught.value)
    assert "\n" not in str(caught.value)
    if damage == "format 1":
        assert "model format 1" in str(caught.value) and "rerun 'gpuseg run'" in str(caught.value)


# -- end to end on the shared demo run ------------------------------------------------------------


def test_assign_users_on_the_training_data_reproduces_the_run_exactly(tmp_path_factory, cpu_backend):
    run = demo_run(tmp_path_factory)
    assigned = assign_users(run.run_dir, run.data_dir, cpu_backend)
    trained = pd.read_parquet(run.run_dir / "segments.parquet")
    assert list(assigned.columns) == ["user_id", "segment", "persona", "membership",
                                      "second_segment", "second_membership", "provisional"]
    assert not assigned["provisional"].any()
    assert assigned["user_id"].dtype == np.int64 and assigned["segment"].dtype == np.int32
    assert assigned["second_segment"].dtype == np.int32
    merged = trained.merge(assigned, on="user_id", suffixes=("_run", "_assigned"), validate="1:1")
    assert len(merged) == len(trained) == len(assigned)
    np.testing.assert_array_equal(merged["segment_assigned"], merged["segment_run"])
    assert (merged["persona_assigned"] == merged["persona_run"]).all()
    for column in ("membership", "second_membership"):
        np.testing.assert_allclose(merged[f"{column}_assigned"], merged[f"{column}_run"],
                                   atol=1e-6, rtol=0)
    np.testing.assert_array_equal(merged["second_segment_assigned"],
                                  merged["second_segment_run"])


def test_assign_users_names_the_features_the_data_lacks(tmp_path_factory, tmp_path, cpu_backend):
    run = demo_run(tmp_path_factory)
    model = load_model(run.run_dir / "model")
    renamed = model.feature_names[:-2] + ("aisle_9999", "basket_mood")
    save_model(replace(model, feature_names=renamed), tmp_path)
    with pytest.raises(GpusegError, match="aisle_9999, basket_mood"):
        assign_users(tmp_path, run.data_dir, cpu_backend)


@pytest.mark.gpu
def test_a_cpu_fitted_model_assigns_the_same_users_on_the_gpu(tmp_path, gpu_backend, cpu_backend):
    """Features computed by cuDF may differ from pandas' in the last bits: labels may flip only
    for users sitting on a boundary, so agreement rather than equality is required."""
    from gpuseg.data.synth import generate_instacart, write_instacart

    data_dir = write_instacart(generate_instacart(2_000, seed=2), tmp_path / "data", fmt="parquet")
    table, labels, model = kmeans_model(data_dir, cpu_backend, k=5, n_init=2, seed=0,
                                        persona_names=tuple(f"segment {j}" for j in range(5)))
    trained = pd.DataFrame({"user_id": table.index.to_numpy(), "segment": labels})
    save_model(model, tmp_path / "model")
    on_gpu = assign_users(tmp_path / "model", data_dir, gpu_backend)
    merged = trained.merge(on_gpu, on="user_id", suffixes=("_run", "_gpu"), validate="1:1")
    assert len(merged) == len(trained) > 1_000
    assert (merged["segment_gpu"] == merged["segment_run"]).mean() >= 0.999


def test_assign_tables_lists_every_user_it_left_out_with_the_reason(tmp_path_factory, cpu_backend):
    """Naive reference: orders that have product rows, counted per user with pandas."""
    from gpuseg.assign import NO_PRODUCTS_REASON, assign_tables
    from gpuseg.data import load_instacart

    run = demo_run(tmp_path_factory)
    model = load_model(run.run_dir / "model")
    data = load_instacart(run.data_dir, backend=cpu_backend)
    silent = data.orders["user_id"].max() + 1  # a user whose one order has no product rows
    orders = pd.concat([data.orders, data.orders.iloc[:1].assign(user_id=silent, order_id=10**8)],
                       ignore_index=True)
    assignment = assign_tables(model, replace(data, orders=orders), cpu_backend)

    with_products = orders[orders["order_id"].isin(data.order_products["order_id"])]
    counts = with_products.groupby("user_id").size()
    few = counts[counts < model.min_orders]
    assert len(few) > 0
    expected_ids = sorted([*few.index, silent])
    assert assignment.excluded["user_id"].tolist() == expected_ids
    by_user = assignment.excluded.set_index("user_id")
    assert by_user.loc[silent, "reason"] == NO_PRODUCTS_REASON
    assert (by_user.loc[few.index, "orders_with_products"] == few).all()
    assert by_user.loc[few.index[0], "reason"].startswith(f"{few.iloc[0]} order")
    assert assignment.users["user_id"].tolist() == sorted(counts[counts >= model.min_orders].index)
    left = len(few) + 1
    assert assignment.summary(model.min_orders) == (
        f"assigned {len(assignment.users):,} users; left out {left:,}: {len(few):,} with fewer "
        f"than {model.min_orders} orders with products, 1 with {NO_PRODUCTS_REASON}")


def test_assign_with_fewer_min_orders_assigns_newer_shoppers_provisionally(tmp_path_factory,
                                                                          cpu_backend):
    from gpuseg.assign import assign_tables, every_user
    from gpuseg.data import load_instacart

    run = demo_run(tmp_path_factory)
    model = load_model(run.run_dir / "model")
    data = load_instacart(run.data_dir, backend=cpu_backend)
    full = assign_tables(model, data, cpu_backend)
    wider = assign_tables(model, data, cpu_backend, min_orders=2)
    provisional = wider.users[wider.users["provisional"]]
    assert len(provisional) > 0 and provisional["membership"].isna().all()
    assert set(provisional["user_id"]) <= set(full.excluded["user_id"])
    # Users with a full history are assigned exactly as without --min-orders.
    settled = wider.users[~wider.users["provisional"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(settled, full.users)
    assert "provisionally, with 2-" in wider.summary(model.min_orders)
    # The file keeps every input user: the left-out ones with their reason and no segment.
    table = every_user(wider)
    assert len(table) == len(wider.users) + len(wider.excluded)
    assert table["user_id"].is_monotonic_increasing
    out = table[table["excluded"].notna()]
    assert out["segment"].isna().all() and len(out) == len(wider.excluded)
    assert table.loc[table["excluded"].isna(), "segment"].notna().all()
