"""A damaged model is refused on load, naming the array, instead of putting every user in one segment."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _fake_result import fake_result, format3_model

from gpuseg.cli import EXIT_USER_ERROR, main
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.errors import GpusegError
from gpuseg.model import ARRAYS_FILE, META_FILE, load_model, save_model
from gpuseg.model_checks import ARRAYS_CHECKSUM, array_sha256


@pytest.fixture(scope="module")
def model():
    return fake_result().model


@pytest.fixture()
def saved(model, tmp_path) -> Path:
    return save_model(model, tmp_path / "model")


@pytest.fixture(scope="module")
def legacy():
    return format3_model(fake_result())


def arrays_of(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / ARRAYS_FILE) as stored:
        return {name: stored[name] for name in stored.files}


def rewrite(folder: Path, *, keep_checksums: bool = False, **changed: np.ndarray) -> None:
    """Change arrays in place; unless ``keep_checksums``, record their new checksums too."""
    arrays = {**arrays_of(folder), **changed}
    np.savez(folder / ARRAYS_FILE, **arrays)
    if not keep_checksums:
        edit_meta(folder, **{ARRAYS_CHECKSUM: {name: array_sha256(array)
                                               for name, array in arrays.items()}})


def edit_meta(folder: Path, **fields) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    (folder / META_FILE).write_text(json.dumps({**meta, **fields}))


def refusal(folder: Path) -> str:
    with pytest.raises(GpusegError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    return message


def test_model_json_records_a_checksum_of_every_array(saved):
    meta = json.loads((saved / META_FILE).read_text())
    arrays = arrays_of(saved)
    assert meta[ARRAYS_CHECKSUM] == {name: array_sha256(array) for name, array in arrays.items()}


def test_an_array_changed_after_saving_is_named_by_its_checksum(saved):
    centroids = arrays_of(saved)["centroids"]
    centroids[1, 0] = np.nan
    rewrite(saved, keep_checksums=True, centroids=centroids)
    assert refusal(saved) == (f"{saved / ARRAYS_FILE}: centroids does not match the SHA-256 "
                              f"{META_FILE} records for it; the array changed after gpuseg saved "
                              "the model: rerun gpuseg run")


def test_a_nan_in_the_centroids_is_refused_even_when_saved_that_way(model, tmp_path):
    centroids = model.centroids.copy()
    centroids[2, 1] = np.nan
    folder = save_model(replace(model, centroids=centroids), tmp_path / "model")
    assert refusal(folder) == (f"{folder / ARRAYS_FILE}: centroids holds nan at [2, 1]; every "
                               "value must be finite: the model is damaged: rerun gpuseg run")


@pytest.mark.parametrize(("array", "damage", "words"), [
    ("scaler_scale", lambda a: np.where(np.arange(a.size) == 2, 0.0, a),
     "scaler_scale is 0.0 for feature 'aisle_2'; every scale must be positive"),
    ("pca_components", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 4, np.inf, a),
     "pca_components holds inf at [0, 4]"),
    ("centroids", lambda a: a[:, :2], "centroids has shape (3, 2), but model.json's 7 features, "
                                      "3 components and k=3 need (3, 3)"),
])
def test_each_broken_array_is_named(saved, array, damage, words):
    rewrite(saved, **{array: damage(arrays_of(saved)[array])})
    assert words in refusal(saved)


@pytest.mark.parametrize(("array", "damage", "words"), [
    ("mixture_weights", lambda a: a * 2, "are not probabilities summing to 1"),
    ("mixture_precisions_cholesky", lambda a: a * np.where(np.arange(a.shape[1]) == 0, -1, 1),
     "mixture component 0's covariance is not positive definite"),
])
def test_each_broken_mixture_array_of_an_older_model_is_named(legacy, tmp_path, array, damage,
                                                              words):
    saved = save_model(legacy, tmp_path / "model")
    rewrite(saved, **{array: damage(arrays_of(saved)[array])})
    assert words in refusal(saved)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("min_orders", "5", "min_orders must be an integer >= 1 (got '5')"),
    ("min_orders", 0, "min_orders must be an integer >= 1 (got 0)"),
    ("feature_names", ["n_orders"] * 7, "feature_names must be names without repeats"),
    ("persona_names", ["only one"], "persona_names must be one name per segment (k=3)"),
    ("k", 4, "persona_names must be one name per segment (k=4)"),
    ("feature_cap", -1, "feature_cap must be null or a positive number (got -1)"),
    ("feature_cap", "3", "feature_cap must be null or a positive number (got '3')"),
    ("certainty", {"temperature": 0.0, "slope": 1.0, "intercepts": [0, 0, 0]},
     "certainty must be null or {\"temperature\": > 0"),
    ("certainty", {"temperature": 1.0, "slope": -1.0, "intercepts": [0, 0, 0]},
     "certainty must be null or"),
    ("certainty", {"temperature": 1.0, "slope": 1.0, "intercepts": [0, 0]},
     "certainty must be null or"),
    ("certainty", {"temperature": 1.0, "slope": 1.0, "intercepts": [0, 0, 0],
                   "short_history": {"two": {"slope": 1.0, "intercept": 0.0}}},
     "certainty must be null or"),
])
def test_a_bad_model_json_field_is_named_as_a_field_of_model_json(saved, field, value, words):
    edit_meta(saved, **{field: value})
    message = refusal(saved)
    assert message.startswith(f"{saved / META_FILE}: ") and words in message
    assert "--" not in message  # no flag: assign has no --min-orders


def test_a_model_saved_before_checksums_loads_and_still_gets_its_values_checked(model, saved,
                                                                                tmp_path):
    edit_meta(saved, **{ARRAYS_CHECKSUM: None})
    meta = json.loads((saved / META_FILE).read_text())
    del meta[ARRAYS_CHECKSUM]
    (saved / META_FILE).write_text(json.dumps(meta))
    np.testing.assert_array_equal(load_model(saved).centroids, model.centroids)
    scale = arrays_of(saved)["scaler_scale"]
    scale[0] = 0.0
    rewrite(saved, keep_checksums=True, scaler_scale=scale)
    assert "scaler_scale is 0.0 for feature 'n_orders'" in refusal(saved)


def test_assign_with_a_damaged_model_exits_2_naming_the_array_and_writes_nothing(
        model, tmp_path, capsys):
    data = write_instacart(generate_instacart(200, seed=4), tmp_path / "data", fmt="parquet")
    folder = save_model(model, tmp_path / "run" / "model")
    scale = arrays_of(folder)["scaler_scale"]
    scale[3] = 0.0
    rewrite(folder, scaler_scale=scale)
    code = main(["assign", "--model", str(tmp_path / "run"), "--data", str(data),
                 "--out", str(tmp_path / "out.parquet"), "--backend", "cpu"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert "scaler_scale is 0.0 for feature 'basket_size_mean'" in err
    assert not (tmp_path / "out.parquet").exists()


def test_assign_names_a_bad_min_orders_as_model_json_s_not_as_a_flag(model, tmp_path, capsys):
    folder = save_model(model, tmp_path / "run" / "model")
    edit_meta(folder, min_orders=0)
    code = main(["assign", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out.parquet"), "--backend", "cpu"])
    assert code == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        f"gpuseg: error: {folder / META_FILE}: min_orders must be an integer >= 1 (got 0); the "
        "model is damaged: rerun gpuseg run\n")
