"""Segment rules re-read in plain pandas: which shoppers a rule picks, and its precision and coverage."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from gpuseg.data import taxonomy as tx
from gpuseg.explain import MAX_DEPTH


def department_aisles(department):
    """The aisle-share columns of a department, read straight from the taxonomy."""
    return [f"aisle_{i + 1}" for i, (_, d) in enumerate(tx.AISLES)
            if tx.DEPARTMENTS[d - 1] == department]


def rule_matches(features: pd.DataFrame, conditions) -> pd.Series:
    """Which shoppers a rule picks, from its structure, in plain pandas."""
    picked = pd.Series(True, index=features.index)
    for condition in conditions:
        key = condition["feature"]
        if key == "order_hour":  # the circular mean hour on a day from 04:00
            hour = np.degrees(np.arctan2(features["hour_sin"], features["hour_cos"])) / 15.0
            value = (hour - 4.0) % 24.0 + 4.0
        elif key.startswith("dept_share_"):
            value = features[department_aisles(key.removeprefix("dept_share_"))].sum(axis=1)
        else:
            value = features[key]
        picked &= (value > condition["threshold"]) if condition["op"] == ">" \
            else (value <= condition["threshold"])
    return picked


def check_rules(entries, features: pd.DataFrame, segments: pd.Series):
    """Every rule's numbers, recomputed from its conditions; its text states those conditions."""
    for entry in entries:
        in_segment = segments == entry["segment"]
        assert entry["n_users"] == in_segment.sum()
        either = pd.Series(False, index=features.index)
        for rule in entry["rules"]:
            assert 1 <= len(rule["conditions"]) <= MAX_DEPTH
            picked = rule_matches(features, rule["conditions"])
            either |= picked
            assert rule["n_matched"] == picked.sum()
            assert rule["precision"] == pytest.approx((picked & in_segment).sum() / picked.sum())
            assert rule["coverage"] == pytest.approx((picked & in_segment).sum() / in_segment.sum())
            assert rule["precision"] > 0.5
            for condition in rule["conditions"]:
                assert condition["text"] in rule["text"]
                clock = re.search(r"(\d+):(\d\d)$", condition["text"])
                number = re.search(r"(?<![\d:])([\d.]+)(%?)$", condition["text"])
                if clock is not None:  # an order time reads "after 20:30", to the minute
                    shown = int(clock.group(1)) + int(clock.group(2)) / 60
                    assert shown == pytest.approx(condition["threshold"], abs=0.5 / 60)
                elif number is not None:
                    shown = float(number.group(1)) / (100 if number.group(2) else 1)
                    assert shown == pytest.approx(condition["threshold"], rel=1e-9)
            assert rule["text"].endswith(f"-> {entry['persona']} (precision "
                                         f"{rule['precision']:.2f}, covers {rule['coverage']:.0%})")
        if entry["rules"]:
            assert entry["precision"] == pytest.approx((either & in_segment).sum() / either.sum())
            assert entry["coverage"] == pytest.approx((either & in_segment).sum() / in_segment.sum())
