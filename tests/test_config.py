"""PipelineConfig: frozen, keyword-only, and every bad value named with its allowed range."""
from __future__ import annotations

import dataclasses

import pytest

from gpuseg.config import PipelineConfig
from gpuseg.errors import ConfigError, GpusegError


def test_defaults_are_the_analysts_defaults():
    config = PipelineConfig()
    assert (config.k, config.min_orders, config.pca_variance, config.seed) == (5, 5, 0.95, 42)
    assert config.k_sweep_range == (2, 10) and config.k_business_range == (3, 8)


def test_is_frozen_and_keyword_only():
    config = PipelineConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.k = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PipelineConfig("cpu")  # type: ignore[misc]


@pytest.mark.parametrize("field, value, fragment", [
    ("backend", "tpu", "backend must be one of auto, gpu, cpu"),
    ("k", 1, "k must be 'auto' or an integer >= 2"),
    ("k", "many", "k must be 'auto'"),
    ("min_orders", 0, "min_orders must be an integer >= 1"),
    ("pca_variance", 1.5, "pca_variance must be a number in (0, 1]"),
    ("pca_variance", 0.0, "pca_variance must be a number in (0, 1]"),
    ("pca_variance", "0.9", "pca_variance must be a number in (0, 1]"),
    ("pca_components", 0, "pca_components must be None (the variance target decides) or an "
                        "integer >= 1"),
    ("k_business_range", (8, 3), "k_business_range must be (low, high)"),
    ("silhouette_sample", 5, "silhouette_sample must be None (every user), 'auto' or an integer >= 100"),
    ("umap_sample", "auto", "umap_sample must be None (every user) or an integer >= 100"),
    ("umap_fit_sample", 50, "umap_fit_sample must be None (every user), 'auto' or an integer >= 100"),
    ("dbscan_eps", -1.0, "dbscan_eps must be None (auto) or a number > 0"),
    ("feature_cap", 0.0, "feature_cap must be None (no cap) or a number > 0"),
    ("feature_cap", float("inf"), "feature_cap must be None (no cap) or a number > 0"),
    ("umap_min_dist", 2.0, "umap_min_dist must be a number in [0, 1]"),
    ("seed", -1, "seed must be an integer in [0, 4294967295]"),
    ("seed", True, "seed must be an integer in [0, 4294967295]"),
    ("n_init", 2.5, "n_init must be an integer >= 1"),
    ("k_sweep_range", [2, 10], "k_sweep_range must be (low, high)"),
    ("stability_sample", "all", "stability_sample must be None (every user), 'auto' or an integer"),
    ("certainty_refits", 1, "certainty_refits must be an integer >= 2"),
    ("density", "optics", "density must be one of dbscan, hdbscan"),
    ("hdbscan_min_samples", 1, "hdbscan_min_samples must be an integer in [2, 1024]"),
    # cuML's HDBSCAN refuses more than 1023 neighbours besides the user itself.
    ("hdbscan_min_samples", 1025, "hdbscan_min_samples must be an integer in [2, 1024]"),
])
def test_bad_values_name_the_field_and_range(field, value, fragment):
    with pytest.raises(ConfigError) as excinfo:
        PipelineConfig(**{field: value})
    assert fragment in str(excinfo.value)
    assert repr(value) in str(excinfo.value)
    assert isinstance(excinfo.value, GpusegError)


def test_to_dict_is_json_ready():
    import json

    payload = PipelineConfig(k="auto", umap_sample=1000).to_dict()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["k_business_range"] == [3, 8]


def test_every_field_is_validated_by_its_kind_and_documented():
    for spec in dataclasses.fields(PipelineConfig):
        assert spec.metadata["help"], spec.name
        assert f"    {spec.name} : " in PipelineConfig.__doc__
    assert "``auto`` is every user on a GPU in one process, else 20,000" in PipelineConfig.__doc__


def test_messages_name_fields_for_python_and_flags_inside_the_cli():
    from gpuseg.config import option, options_as_flags, setting

    assert (option("min_orders"), setting("k", 3), setting("force", True)) == \
        ("min_orders", "k=3", "force=True")
    with options_as_flags():
        assert (option("min_orders"), setting("k", 3), setting("force", True)) == \
            ("--min-orders", "--k 3", "--force")
        assert option("k_business_range") == "--k-range"
        with pytest.raises(ConfigError, match="--pca-variance must be a number"):
            PipelineConfig(pca_variance=2.0)
    assert option("min_orders") == "min_orders"


def test_sample_sizes_resolve_auto_from_the_backend_and_the_run(cpu_backend):
    from types import SimpleNamespace

    from gpuseg.config import SAMPLE_FIELDS, SAMPLED

    config = PipelineConfig(silhouette_sample=None, dbscan_sample=500)
    assert set(SAMPLE_FIELDS) == set(SAMPLED)
    assert config.sample_size("sweep_sample", cpu_backend) == SAMPLED["sweep_sample"] == 20_000
    assert config.sample_size("silhouette_sample", cpu_backend) is None
    assert config.sample_size("dbscan_sample", cpu_backend) == 500
    # A backend that fits every user does so in one process; across Dask workers the sampled
    # stages gather to the client, so a distributed GPU run samples as the CPU does.
    gpu = SimpleNamespace(fits_every_user=True)
    assert config.sample_size("sweep_sample", gpu) is None
    assert config.sample_size("dbscan_sample", gpu) == 500
    across = PipelineConfig(workers=2)
    assert across.sample_size("sweep_sample", gpu) == 20_000
    assert across.sample_size("umap_fit_sample", gpu) == SAMPLED["umap_fit_sample"]


def test_the_backend_names_are_spelled_once():
    import typing

    from gpuseg.config import BACKEND_NAMES, BackendName

    assert typing.get_args(BackendName) == BACKEND_NAMES
