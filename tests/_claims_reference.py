"""A naive reference for the evidence of a run: every claim recomputed from profiles.csv alone.

A claim (metrics.json: ``personas[].rule``, ``.evidence[]``, ``.actions[].fact``)
states numbers and words. This module recomputes each number from the profile
table with plain pandas and checks that the words say what the numbers say:
"higher" only above the average shopper, a named word only past its
threshold, "together x% of items" the sum of the departments it lists, an
action only where its fact passes its threshold. It deliberately shares no
code with :mod:`gpuseg.personas`, so that the two can only agree by being right.

:func:`check_run` raises ``AssertionError`` naming the segment and the claim
at the first claim its numbers contradict.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

#: How a sentence writes a feature's value.
PERCENT_FEATURES = {"organic_ratio", "reorder_ratio", "weekend_ratio", "basket_consistency"}
ONE_DECIMAL_FEATURES = {"n_orders", "basket_size_mean", "days_between_mean"}
#: The word a descriptive name takes for a feature far above (+1) or below (-1) the average.
NAME_WORDS = {("n_orders", 1): "Loyal", ("n_orders", -1): "Light",
              ("days_between_mean", 1): "Occasional", ("days_between_mean", -1): "Frequent",
              ("weekend_ratio", 1): "Weekend", ("weekend_ratio", -1): "Weekday",
              ("organic_ratio", 1): "Organic",
              ("reorder_ratio", 1): "Routine", ("reorder_ratio", -1): "Variety-Seeking",
              ("basket_size_mean", 1): "Big-Basket", ("basket_size_mean", -1): "Small-Basket"}
TOLERANCE = 1e-9


# -- the average shopper, naively ------------------------------------------------------------------
def average(profiles: pd.DataFrame, column: str) -> float:
    """The mean over every shopper: the segments' means weighted by their share of shoppers."""
    return float((profiles["share"] * profiles[column]).sum())


def hour_of(sin: float, cos: float) -> float:
    """The clock hour (0-24) of a mean direction on the 24-hour circle."""
    return math.degrees(math.atan2(sin, cos)) / 15.0 % 24.0


def clock(hour: float) -> str:
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def written(feature: str, value: float) -> str:
    if feature in PERCENT_FEATURES:
        return f"{value:.1%}"
    if feature in ONE_DECIMAL_FEATURES:
        return f"{value:.1f}"
    return f"{value:.2f}"


# -- checks ----------------------------------------------------------------------------------------
def same(stated: float, recomputed: float, what: str) -> None:
    assert math.isclose(stated, recomputed, rel_tol=TOLERANCE, abs_tol=TOLERANCE), \
        f"{what}: stated {stated!r}, profiles.csv gives {recomputed!r}"


def says(text: str, fragment: str) -> None:
    assert fragment in text, f"{fragment!r} is not in {text!r}"


def check_feature(claim: dict, row: pd.Series, profiles: pd.DataFrame) -> None:
    feature, numbers, text = claim["subject"], claim["numbers"], claim["text"]
    value, mean, z = row[feature], average(profiles, feature), row[f"z_{feature}"]
    same(numbers["value"], value, "the segment's mean")
    same(numbers["average"], mean, "the average shopper's mean")
    same(numbers["z"], z, "the standardised difference")
    same(numbers["ratio"], value / mean, "the ratio")
    says(text, f"{written(feature, value)} against the average shopper's {written(feature, mean)}")
    says(text, f"({value / mean:.2f}x; {z:+.2f} SD)")
    verdict = text.split(" SD)")[1]  # ": higher, as the persona wants; ..." or "; named ..."
    if verdict.startswith(": higher"):
        assert z > 0, f"'higher' at {z:+.3f} SD: {text}"
    if verdict.startswith(": lower"):
        assert z < 0, f"'lower' at {z:+.3f} SD: {text}"
    if verdict.startswith(": level"):
        assert round(z, 2) == 0, f"'level' at {z:+.3f} SD: {text}"
    if "signal" in numbers:
        signal = numbers["signal"]
        same(abs(signal), min(abs(z) / 0.75, 2.0), "the signal's size")
        says(text, f"signal {signal:+.2f}")
        wanted = "as the persona wants" in text
        assert wanted == (signal > 0), f"'as the persona wants' with signal {signal:+.2f}: {text}"
    if "word_from" in numbers:
        assert abs(z) >= numbers["word_from"], f"named at {z:+.2f} SD: {text}"
        word = re.search(r"named '([^']+)'", text).group(1)
        assert NAME_WORDS[(feature, 1 if z > 0 else -1)] == word, f"{word!r} at {z:+.2f} SD"


def check_hour(claim: dict, row: pd.Series, profiles: pd.DataFrame) -> None:
    numbers, text = claim["numbers"], claim["text"]
    hour = hour_of(row["hour_sin"], row["hour_cos"])
    everyone = hour_of(average(profiles, "hour_sin"), average(profiles, "hour_cos"))
    shift = (hour - everyone + 12.0) % 24.0 - 12.0
    same(numbers["hour"], hour, "the segment's hour")
    same(numbers["average"] % 24.0, everyone, "the average shopper's hour")
    same(numbers["shift"], shift, "the shift")
    same(numbers["shift"], row["hour_shift"], "the shift in profiles.csv")
    says(text, f"orders around {clock(hour)}")
    says(text, f"the average shopper's {clock(everyone)}")
    if round(abs(shift), 1) > 0:
        says(text, f"{abs(shift):.1f} h {'later' if shift > 0 else 'earlier'} than")
    for bound in ("word_from", "at_least"):
        if bound in numbers:
            assert abs(shift) >= numbers[bound], f"{abs(shift):.2f} h from the average: {text}"


def check_cadence(claim: dict, row: pd.Series) -> None:
    numbers, text = claim["numbers"], claim["text"]
    days = row["days_between_mean"]
    same(numbers["value"], days, "days between orders")
    same(numbers["signal"], max(-1.0, min(1.0, 1 - abs(days - numbers["target"]) / 5.0)),
         "the cadence signal")
    says(text, f"{days:.1f}, {abs(days - numbers['target']):.1f} days from a "
               f"{numbers['target']:g}-day rhythm")


def check_departments(claim: dict, row: pd.Series) -> None:
    numbers, text = claim["numbers"], claim["text"]
    lifts = {key[len("lift:"):]: value for key, value in numbers.items() if key.startswith("lift:")}
    for department, lift in lifts.items():
        same(lift, row[f"dept_lift_{department}"], f"{department}'s lift")
        says(text, f"{department} {lift:.2f}x")
    above = [d for d, lift in lifts.items() if lift > 1.0]
    at_or_below = [d for d, lift in lifts.items() if lift <= 1.0]
    if above:
        compared = text.split(" above the average shopper's share")[0]
        assert all(d in compared for d in above), text
    if at_or_below:
        says(text, " at or below it")
        assert text.index(" at or below it") > max(text.index(f"{d} ") for d in at_or_below)
    signals = [max(-2.0, min(2.0, math.log(lift) / math.log(1.5))) for lift in lifts.values()]
    if signals:
        same(abs(numbers["signal"]), abs(float(np.mean(signals))), "the group's signal")
    if "share_above" in numbers:
        listed = re.search(r"above the average rate \(([^)]*)\) together", text)
        named = [] if listed is None else re.split(r", | and ", listed.group(1))
        share = sum(row[f"dept_share_{d}"] for d in named)
        assert all(row[f"dept_lift_{d}"] > 1.0 for d in named), text
        same(numbers["share_above"], share, "the share of the departments bought above the rate")
        if named:
            says(text, f"together {share:.1%} of the segment's items")


def check_department(claim: dict, row: pd.Series, profiles: pd.DataFrame) -> None:
    department, numbers, text = claim["subject"], claim["numbers"], claim["text"]
    department = department.removeprefix("dept_share_")
    share, lift = row[f"dept_share_{department}"], row[f"dept_lift_{department}"]
    everyone = average(profiles, f"dept_share_{department}")
    same(numbers["share"], share, f"{department}'s share")
    same(numbers["lift"], lift, f"{department}'s lift")
    same(numbers["average"], everyone, f"{department}'s share of everyone's items")
    same(lift, share / everyone, f"{department}'s lift as share over everyone's share")
    says(text, f"{share:.1%} of the segment's items, {lift:.2f}x the average shopper's "
               f"{everyone:.1%}")
    for bound, passes in (("share_needed", share), ("share_at_least", share),
                          ("lift_needed", lift), ("lift_at_least", lift),
                          ("average_needed", everyone), ("average_at_least", everyone)):
        if bound in numbers:
            assert passes >= numbers[bound], f"{bound} {numbers[bound]} not met: {text}"
    if "lift_at_most" in numbers:
        assert lift <= numbers["lift_at_most"], f"a shortfall at {lift:.2f}x: {text}"


def check_trigger(claim: dict, key: str, row: pd.Series, profiles: pd.DataFrame) -> None:
    subject, numbers, text = claim["subject"], claim["numbers"], claim["text"]
    if key == "hour":
        check_hour(claim, row, profiles)
        return
    if subject.startswith("dept_share_"):
        check_department(claim, row, profiles)
        return
    value, mean = row[subject], average(profiles, subject)
    same(numbers["value"], value, "the segment's mean")
    same(numbers["average"], mean, "the average shopper's mean")
    ratio = value / mean
    same(numbers["ratio"], ratio, "the ratio")
    says(text, f"{written(subject, value)} against the average shopper's {written(subject, mean)} "
               f"({ratio:.2f}x; the action needs")
    if key.endswith(":high"):
        assert ratio >= numbers["at_least"], f"{key} at {ratio:.3f}x: {text}"
    else:
        assert key.endswith(":low") and ratio <= numbers["at_most"], f"{key} at {ratio:.3f}x: {text}"


def check_rule(rule: dict, evidence: list[dict]) -> None:
    numbers, text = rule["numbers"], rule["text"]
    score, threshold = numbers.get("score", math.nan), numbers["threshold"]
    if rule["kind"] == "rule":
        assert score >= threshold, text
        signals = [(c["numbers"]["signal"], c["numbers"]["weight"]) for c in evidence
                   if "signal" in c["numbers"]]
        weighted = sum(s * w for s, w in signals) / sum(w for _, w in signals)
        same(score, weighted, "the score as the weighted mean of the signals beside it")
        says(text, f"score {score:.2f}, at least {threshold:.2f} needed")
    elif rule["kind"] == "no_rule":
        if math.isfinite(score):
            says(text, f"scores {score:.2f}")
            assert (score < threshold) == ("under the" in text), text
            assert score < threshold or "not met: " in text, text
        for key, value in numbers.items():
            if key.startswith("core:"):
                assert value <= 0, f"{key} {value} called not above 0"
        if "share_above" in numbers:
            assert numbers["share_above"] < 0.05, text
    elif rule["kind"] == "rule_withheld":
        # A persona withheld: it wins by too little, the segment does not come back on the
        # refits, or the refits' matched segments carry another persona.
        if "margin" in numbers:
            assert score >= threshold and numbers["margin"] < numbers["margin_needed"], text
            says(text, f"wins by only {numbers['margin']:.2f}")
        elif "reproducibility" in numbers:
            assert numbers["reproducibility"] < numbers["dissolves_below"], text
            says(text, f"best-match Jaccard {numbers['reproducibility']:.2f}")
        else:
            assert 0 < numbers["refits_differing"] <= numbers["refits"], text
            says(text, f"in {numbers['refits_differing']:.0f} of {numbers['refits']:.0f} "
                       "subsample refits")
    elif rule["kind"] == "rule_taken":
        for key, value in numbers.items():
            if key.startswith("score:"):
                name = key[len("score:"):]
                assert value >= threshold, text
                winner = numbers[f"winner_score:{name}"]
                says(text, f"{name} (score {value:.2f}, at least {threshold:.2f} needed), but "
                           f"segment {numbers[f'winner_segment:{name}']:.0f} "
                           + ("fits it at least as well" if winner >= value else "was given it"))


def check_baseline(claim: dict, row: pd.Series, profiles: pd.DataFrame) -> None:
    numbers = claim["numbers"]
    same(numbers["share"], row["share"], "the share of shoppers")
    for column in ("order_share", "item_share"):
        if column in numbers:
            same(numbers[column], row[column], column)
            says(claim["text"], f"{row[column]:.1%} of all")
    largest = row["share"] == profiles["share"].max()
    assert (numbers["largest"] == 1.0) == largest, claim["text"]


def check_run(profiles: pd.DataFrame, personas: list[dict[str, Any]]) -> int:
    """Check every claim of every segment against ``profiles`` (profiles.csv); return how many."""
    checked = 0
    for persona in personas:
        row = profiles.loc[profiles["segment"] == persona["segment"]].iloc[0]
        where = f"segment {persona['segment']} ({persona['name']})"
        try:
            for claim in persona["evidence"]:
                kind = claim["kind"]
                if kind == "feature":
                    check_feature(claim, row, profiles)
                elif kind == "hour":
                    check_hour(claim, row, profiles)
                elif kind == "cadence":
                    check_cadence(claim, row)
                elif kind == "departments":
                    check_departments(claim, row)
                elif kind == "department":
                    check_department(claim, row, profiles)
                else:
                    raise AssertionError(f"unknown claim kind {kind!r}")
                checked += 1
            check_rule(persona["rule"], persona["evidence"])
            checked += 1
            actions = persona["actions"]
            for action in actions:
                if action["key"] == "baseline":
                    assert len(actions) == 1, "a baseline statement beside triggered actions"
                    check_baseline(action["fact"], row, profiles)
                else:
                    check_trigger(action["fact"], action["key"], row, profiles)
                checked += 1
        except (AssertionError, KeyError) as error:
            raise AssertionError(f"{where}: {error}") from error
    return checked
