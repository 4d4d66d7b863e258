"""Explanations: grouped permutation importance through the saved model, and segment rules."""
from __future__ import annotations

import json

import _stages
import numpy as np
import pandas as pd
import pytest
from _fake_result import fake_features, fake_result, kmeans_model
from _rules_reference import check_rules, department_aisles

from gpuseg.assign import assign
from gpuseg.config import PipelineConfig
from gpuseg.data import taxonomy as tx
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.explain import (
    BEHAVIOUR_FAMILIES,
    CLEAR_DROP,
    MAX_DEPTH,
    feature_groups,
    grouped_importance,
)
from gpuseg.facts import CatalogNames
from gpuseg.features import FEATURE_COLUMNS_FIXED, feature_columns
from gpuseg.stages.rules import Rules

#: The public taxonomy, as the pipeline's catalog reads it from a Kaggle-layout folder.
CATALOG = {
    "aisles": {i + 1: name for i, (name, _) in enumerate(tx.AISLES)},
    "departments": {i + 1: name for i, name in enumerate(tx.DEPARTMENTS)},
    "aisle_department": {i + 1: department for i, (_, department) in enumerate(tx.AISLES)},
}


def _groups(names):
    return feature_groups(names, aisle_department=CATALOG["aisle_department"],
                          departments=CATALOG["departments"])


# -- feature families ---------------------------------------------------------------------------
def test_families_put_every_feature_in_one_group_and_each_department_s_aisles_together():
    names = feature_columns(range(1, tx.N_AISLES + 1))
    groups = _groups(names)
    grouped = [f for g in groups for f in g.features]
    assert sorted(grouped) == sorted(names)
    assert set(FEATURE_COLUMNS_FIXED) == set(BEHAVIOUR_FAMILIES)
    by_name = {g.name: g for g in groups}
    assert set(by_name["canned goods aisles"].features) == set(department_aisles("canned goods"))
    assert len([g for g in groups if g.kind == "department"]) == tx.N_DEPARTMENTS
    assert by_name["time of day and weekend"].features == ("hour_sin", "hour_cos", "weekend_ratio")


# -- grouped importance, on a small hand-checked model ------------------------------------------------
def test_grouped_importance_is_the_accuracy_the_saved_model_loses(backend):
    result = fake_result()
    features = fake_features()
    model, labels = result.model, result.labels
    groups = feature_groups(list(features.columns), aisle_department={1: 4, 2: 4},
                            departments={4: "produce"})
    found = grouped_importance(backend.from_host(features), backend.from_host(labels), backend,
                               model=model, groups=groups, seed=5, n_repeats=1)
    assert found.base_accuracy == pytest.approx(np.mean(
        backend.to_numpy(assign(model, backend.from_host(features), backend)) == labels))
    # Naively: shuffle the family's columns together, assign with the saved model, count.
    permutation = np.random.default_rng(5).permutation(len(features))
    largest = np.bincount(labels).max() / len(labels)
    for group in found.groups:
        shuffled = features.copy()
        columns = list(group.features)
        shuffled[columns] = features[columns].to_numpy()[permutation]
        moved = backend.to_numpy(assign(model, backend.from_host(shuffled), backend))
        assert group.drop == pytest.approx(found.base_accuracy - np.mean(moved == labels),
                                           abs=1e-12)
        z = ((features - model.scaler_mean) / model.scaler_scale)[columns].to_numpy()
        centres = pd.DataFrame(model.centroids @ model.pca_components + model.pca_mean,
                               columns=features.columns)[columns].to_numpy()
        nearest = ((z[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
        assert group.alone_accuracy == pytest.approx(np.mean(nearest == labels), abs=1e-12)
    assert found.majority_share == pytest.approx(largest)
    assert [g.drop for g in found.groups] == sorted((g.drop for g in found.groups), reverse=True)
    json.dumps(found.to_dict())


# -- on realistic synthetic shoppers ----------------------------------------------------------------
@pytest.fixture(scope="module")
def realistic(tmp_path_factory, cpu_backend):
    """3,000 realistic shoppers, their features, a saved-model equivalent and a 5-segment KMeans."""
    folder = write_instacart(generate_instacart(3_000, seed=11, separation="realistic"),
                             tmp_path_factory.mktemp("realistic") / "data", fmt="parquet")
    return kmeans_model(folder, cpu_backend, k=5, n_init=4, seed=3,
                        persona_names=tuple(f"Segment <{j}>" for j in range(5)))


def test_on_realistic_shoppers_some_family_is_clearly_needed(realistic, cpu_backend):
    """A clear drop: at least CLEAR_DROP (5 %) of every shopper changes segment (see importance.py)."""
    table, labels, model = realistic
    found = grouped_importance(table, labels, cpu_backend, model=model,
                               groups=_groups(list(table.columns)), seed=0)
    assert found.base_accuracy == 1.0 and found.n_users == len(table)
    clear = [g for g in found.groups if g.clear]
    assert clear and clear[0].drop >= CLEAR_DROP
    # Three shuffles agree closely: a clear drop is far above the shuffle-to-shuffle spread.
    assert clear[0].drop > 5 * clear[0].drop_std
    # ...and not everything is "clear": the rarely bought bulk aisles move almost no one.
    assert next(g for g in found.groups if g.name == "bulk aisles").drop < CLEAR_DROP


def _rules(table, labels, backend, *, personas, seed, sample):
    """The rules stage: trees on a seeded sample of ``sample`` shoppers, measured on everyone."""
    config = PipelineConfig(backend=backend.name, seed=seed, rules_sample=sample)
    run = _stages.state(np.zeros((len(table), 1)), backend, labels=labels, config=config,
                        features=table, catalog=CatalogNames(**CATALOG), personas=personas)
    return _stages.run(Rules(), run)


def test_rules_on_realistic_shoppers_are_recomputed_from_their_conditions(realistic, cpu_backend):
    table, labels, model = realistic
    found = _rules(table, labels, cpu_backend, personas=model.persona_names, seed=0,
                   sample=2_000)
    entries = json.loads(json.dumps([segment.to_dict() for segment in found]))
    assert [entry["segment"] for entry in entries] == list(range(5))
    assert sum(bool(entry["rules"]) for entry in entries) >= 3
    assert all(entry["tree"] == {"max_depth": MAX_DEPTH, "sample_size": 2_000} for entry in entries)
    check_rules(entries, table, pd.Series(labels, index=table.index))


@pytest.mark.gpu
def test_rules_on_the_gpu_are_the_cpu_s(gpu_backend, realistic, cpu_backend):
    """Same host sample and trees, so the same conditions; precision and coverage counted on the
    device (a department share summed in another order may sit on the other side of a threshold
    by one rounding error, hence the tolerance)."""
    table, labels, model = realistic
    kwargs = dict(personas=model.persona_names, seed=1, sample=1_500)
    on_gpu = _rules(table, labels, gpu_backend, **kwargs)
    on_cpu = _rules(table, labels, cpu_backend, **kwargs)
    for gpu, cpu in zip(on_gpu, on_cpu, strict=True):
        assert [r.conditions for r in gpu.rules] == [r.conditions for r in cpu.rules]
        for gpu_rule, cpu_rule in zip(gpu.rules, cpu.rules):
            assert gpu_rule.precision == pytest.approx(cpu_rule.precision, abs=2 / len(table))
            assert gpu_rule.coverage == pytest.approx(cpu_rule.coverage, abs=2 / len(table))
