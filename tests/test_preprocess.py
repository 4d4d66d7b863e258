"""StandardScaler + PCA to a variance target, on every backend."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from gpuseg.errors import GpusegError
from gpuseg.preprocess import components_for_variance, preprocess


def _features(n_users: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_users, 2))
    mixing = rng.normal(size=(2, 6))
    values = latent @ mixing + 0.05 * rng.normal(size=(n_users, 6))
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(6)],
                         index=pd.Index(np.arange(10, 10 + n_users), name="user_id"))
    frame["constant"] = 3.0
    return frame


def test_components_for_variance_takes_the_fewest_that_reach_the_target():
    ratio = np.array([0.6, 0.3, 0.06, 0.04])
    assert components_for_variance(ratio, 0.5) == 1
    assert components_for_variance(ratio, 0.9) == 2
    assert components_for_variance(ratio, 0.95) == 3
    assert components_for_variance(ratio, 1.0) == 4


def test_pca_keeps_the_variance_target_and_matches_scikit_learn(backend):
    frame = _features()
    prep = preprocess(backend.from_host(frame), backend, pca_variance=0.95, feature_cap=None)
    standardised = (frame - frame.mean()) / frame.std(ddof=0).replace(0, 1)
    reference = PCA(svd_solver="full").fit(standardised.to_numpy())
    expected_k = components_for_variance(reference.explained_variance_ratio_, 0.95)
    assert prep.n_components == expected_k == 2  # two latent factors plus noise
    assert prep.retained_variance >= 0.95
    np.testing.assert_allclose(prep.explained_variance_ratio, reference.explained_variance_ratio_,
                               atol=1e-4)
    ours = backend.to_host(prep.X_pca)
    theirs = reference.transform(standardised.to_numpy())[:, :expected_k]
    signs = np.sign(np.sum(ours * theirs, axis=0))  # components are defined up to sign
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-6)
    assert prep.zero_variance_features == ("constant",)
    assert backend.to_host(prep.user_ids).tolist() == frame.index.tolist()


def test_fixed_component_count_overrides_the_target(backend):
    prep = preprocess(backend.from_host(_features()), backend, pca_components=4)
    assert prep.n_components == 4 and prep.X_pca.shape == (400, 4)


def test_target_reachable_with_one_component(backend):
    rng = np.random.default_rng(1)
    base = rng.normal(size=200)
    frame = pd.DataFrame({"a": base, "b": 2 * base + 1e-6 * rng.normal(size=200)},
                         index=pd.Index(np.arange(200), name="user_id"))
    prep = preprocess(backend.from_host(frame), backend, pca_variance=0.95)
    assert prep.n_components == 1 and prep.retained_variance > 0.999


def test_model_parameters_reproduce_the_projection(cpu_backend):
    frame = _features()
    prep = preprocess(frame, cpu_backend)
    scaler, pca = prep.scaler_params(), prep.pca_params()
    z = np.clip((frame.to_numpy() - scaler["mean"]) / scaler["scale"], -scaler["cap"], scaler["cap"])
    projected = (z - pca["mean"]) @ pca["components"].T
    np.testing.assert_allclose(projected, prep.X_pca, atol=1e-10)


def test_the_cap_clips_standardised_values_and_the_pca_is_fitted_on_them(backend):
    """A few heavy buyers of one rare aisle sit far out along its axis; capped at 3 SD they
    weigh no more than any other user's 3 SD (the scaler's moments stay those of the data)."""
    frame = _features(500)
    rare = np.zeros(500)
    rare[:5] = [0.4, 0.5, 0.6, 0.3, 0.45]
    frame["aisle_99"] = rare
    prep = preprocess(backend.from_host(frame), backend, feature_cap=3.0)
    values = frame.to_numpy()
    mean, scale = values.mean(axis=0), values.std(axis=0)
    scale[scale == 0] = 1.0
    z = (values - mean) / scale
    z[:, list(frame.columns).index("constant")] = 0.0
    assert np.abs(z).max() > 9  # the rare aisle's buyers, uncapped
    capped = np.clip(z, -3.0, 3.0)
    np.testing.assert_allclose(backend.to_host(prep.X_scaled), capped, atol=1e-12)
    np.testing.assert_allclose(prep.scaler_params()["mean"], mean, atol=1e-12)
    reference = PCA(svd_solver="full").fit(capped)
    np.testing.assert_allclose(prep.explained_variance_ratio, reference.explained_variance_ratio_,
                               atol=1e-8)
    rare_column = list(frame.columns).index("aisle_99")
    assert prep.scaler.capped[rare_column] == 5
    assert prep.scaler.capped.sum() == (np.abs(z) > 3.0).sum()


@pytest.mark.parametrize("n_users", [0, 1])
def test_too_few_users_is_a_clear_error(cpu_backend, n_users):
    with pytest.raises(GpusegError, match="needs at least 2"):
        preprocess(_features().iloc[:n_users], cpu_backend)


def test_too_many_fixed_components_is_a_clear_error(cpu_backend):
    with pytest.raises(GpusegError, match="pca_components=50 exceeds"):
        preprocess(_features(), cpu_backend, pca_components=50)


def test_a_rounding_noise_constant_feature_is_zeroed(cpu_backend):
    frame = _features(1_000).drop(columns="constant")
    # Every order at 13:00: identical values whose mean differs from them in the last bit, so
    # a scaler dividing by that noise (cuML's treats only an exact 0.0 as constant) would
    # turn the column into unit-variance noise.
    frame["hour_sin"] = np.sin(2 * np.pi * 13 / 24)
    assert frame["hour_sin"].to_numpy().var() > 0.0
    prep = preprocess(frame, cpu_backend)
    assert prep.zero_variance_features == ("hour_sin",)
    column = list(prep.feature_names).index("hour_sin")
    assert (prep.X_scaled[:, column] == 0.0).all()
    assert prep.scaler_params()["scale"][column] == 1.0
    # The saved parameters reproduce the projection, so assign agrees with the run.
    scaler, pca = prep.scaler_params(), prep.pca_params()
    z = np.clip((frame.to_numpy() - scaler["mean"]) / scaler["scale"], -scaler["cap"], scaler["cap"])
    projected = (z - pca["mean"]) @ pca["components"].T
    np.testing.assert_allclose(projected, prep.X_pca, atol=1e-10)
