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
    prep = preprocess(backend.from_host(frame), backend, pca_variance=0.95)
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
    projected = ((frame.to_numpy() - scaler["mean"]) / scaler["scale"] - pca["mean"]) @ pca["components"].T
    np.testing.assert_allclose(projected, prep.X_pca, atol=1e-10)


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
    projected = ((frame.to_numpy() - scaler["mean"]) / scaler["scale"] - pca["mean"]) @ pca["components"].T
    np.testing.assert_allclose(projected, prep.X_pca, atol=1e-10)
