"""Every claim of "Why this name" and of each action's trigger holds against profiles.csv.

Several runs (strong and realistic shoppers, several seeds) are profiled and
named, their profile table is written and read back as profiles.csv is, and
the naive reference of ``tests/_claims_reference.py`` recomputes every number
and checks every word of every segment's evidence, rule and actions.
"""
from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from _claims_reference import check_run

from gpuseg.cluster import fit_kmeans
from gpuseg.data import load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.facts import catalog_names
from gpuseg.features import compute_features
from gpuseg.personas import name_segments, profile_segments
from gpuseg.preprocess import preprocess

RUNS = [("strong", 1), ("strong", 2), ("realistic", 1), ("realistic", 2), ("realistic", 3)]


@pytest.fixture(scope="module", params=RUNS, ids=[f"{s}-{seed}" for s, seed in RUNS])
def named_run(request, tmp_path_factory, cpu_backend):
    """profiles.csv and the personas' claims of 2,000 synthetic shoppers in 5 KMeans segments."""
    separation, seed = request.param
    folder = write_instacart(generate_instacart(2_000, seed=seed, separation=separation),
                             tmp_path_factory.mktemp("run") / f"{separation}-{seed}",
                             fmt="parquet")
    data = load_instacart(folder, backend=cpu_backend)
    table = compute_features(data, cpu_backend, min_orders=5).table
    fit = fit_kmeans(preprocess(table, cpu_backend).X_pca, cpu_backend, k=5, n_init=2, seed=seed)
    catalog = catalog_names(data.aisles, data.departments, data.products, cpu_backend)
    profiles = profile_segments(table, fit.labels, cpu_backend, **catalog.as_keywords())
    personas = json.loads(json.dumps([p.to_dict() for p in name_segments(profiles)]))
    csv = folder.parent / "profiles.csv"
    profiles.to_csv(csv, index=False)
    return pd.read_csv(csv), personas


def test_every_claim_of_every_segment_is_recomputed_from_profiles_csv(named_run):
    profiles, personas = named_run
    checked = check_run(profiles, personas)
    # At least a rule, a piece of evidence and an action per segment.
    assert checked >= 3 * len(personas)


def test_the_reference_catches_a_claim_its_numbers_contradict(named_run):
    profiles, personas = named_run
    segment, claim = next((p["segment"], c) for p in personas for c in p["evidence"]
                          if c["kind"] in ("feature", "department"))
    for broken in ("wrong number", "wrong word"):
        tampered = copy.deepcopy(personas)
        target = next(c for p in tampered if p["segment"] == segment for c in p["evidence"]
                      if c == claim)
        if broken == "wrong number":
            key = "value" if claim["kind"] == "feature" else "share"
            target["numbers"][key] *= 1.1
        else:
            target["text"] = (target["text"].replace("x the average", "x  the average")
                              .replace("against the", "against  the"))
        with pytest.raises(AssertionError, match=f"segment {segment}"):
            check_run(profiles, tampered)
