"""Business actions: each triggered by one fact of its segment past a documented threshold."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gpuseg import personas
from gpuseg.personas import actions
from gpuseg.personas.basket import department_shares
from gpuseg.personas.population import population

#: The average shopper's department shares in these tables.
SHARES = {"produce": 0.29, "dairy eggs": 0.17, "snacks": 0.09, "frozen": 0.07, "deli": 0.03,
          "babies": 0.013}


def _row(segment, share, *, basket=10.0, days=11.0, orders=16.0, organic=0.2, reorder=0.6,
         weekend=0.3, hour=13, shift=0.0, lift=None):
    """A profile row; departments at the average shopper's share unless ``lift`` says otherwise."""
    row = {"segment": segment, "share": share, "basket_size_mean": basket,
           "days_between_mean": days, "n_orders": orders, "organic_ratio": organic,
           "reorder_ratio": reorder, "weekend_ratio": weekend, "preferred_hour": hour,
           "hour_shift": shift}
    for department, base in SHARES.items():
        row[f"dept_share_{department}"] = base * (lift or {}).get(department, 1.0)
    return row


def _table(rows):
    """The rows with each department's lift measured against the table's own population."""
    table = pd.DataFrame(rows)
    for department in SHARES:
        share = table[f"dept_share_{department}"]
        table[f"dept_lift_{department}"] = share / (table["share"] @ share)
    return table


def _actions(rows, j):
    table = _table(rows)
    average = population(table)
    row = table.to_dict("records")[j]
    largest = int(np.argmax(table["share"])) == j
    return actions.triggered_actions(row, average, department_shares(row, average.departments),
                                     largest=largest)


def _keys(rows, j):
    return [action.key for action in _actions(rows, j)]


def test_bulk_needs_a_basket_at_least_1_3_times_the_average():
    # The average basket is the size-weighted mean of the rows.
    for ratio, triggered in ((1.31, True), (1.29, False)):
        # basket / ((basket + 10) / 2) = ratio  =>  basket = 10 ratio / (2 - ratio)
        rows = [_row(0, 0.5, basket=10 * ratio / (2 - ratio)), _row(1, 0.5)]
        assert ("basket_size_mean:high" in _keys(rows, 0)) is triggered, ratio


def test_a_delivery_slot_needs_a_preferred_hour_two_hours_from_the_average():
    afternoon = [_row(0, 0.5, hour=16, shift=2.5), _row(1, 0.5)]
    (slot,) = [a for a in _actions(afternoon, 0) if a.key == "hour"]
    # The action says when the segment orders; it is no late-night slot at 16:00.
    assert slot.text == "afternoon delivery slots around 16:00, when this segment orders"
    assert "2.5 h later than the average shopper's" in slot.fact.text
    assert "the action needs 2 h or more either way" in slot.fact.text
    near = [_row(0, 0.5, hour=15, shift=1.9), _row(1, 0.5)]
    assert "hour" not in _keys(near, 0)


def test_a_department_action_needs_a_real_lift_on_a_material_share():
    frozen = [_row(0, 0.5, lift={"frozen": 1.25}), _row(1, 0.5)]
    assert "department:frozen" not in _keys(frozen, 0)  # 1.25 / 1.125 = 1.11x the average
    frozen = [_row(0, 0.2, lift={"frozen": 1.3}), _row(1, 0.8)]
    assert "department:frozen" in _keys(frozen, 0)  # 1.24x, 8.7% of items
    deli = [_row(0, 0.2, lift={"deli": 1.3}), _row(1, 0.8)]
    assert "department:deli" not in _keys(deli, 0)  # 1.24x, but 3.9% of items
    babies = [_row(0, 0.2, lift={"babies": 3.0}), _row(1, 0.8)]
    assert not any("baby" in a.text for a in _actions(babies, 0))  # 3.9% of items


def test_every_action_names_its_fact_and_threshold():
    rows = [_row(0, 0.3, basket=16.0, days=6.0, organic=0.3, weekend=0.5, hour=21, shift=6.0,
                 lift={"produce": 1.5, "snacks": 0.4}), _row(1, 0.7)]
    found = _actions(rows, 0)
    assert 1 <= len(found) <= personas.MAX_ACTIONS
    for action in found:
        assert "the action needs" in action.fact.text
        assert action.fact.kind == "trigger"
    strengths = [action.strength for action in found]
    assert strengths == sorted(strengths, reverse=True) and min(strengths) >= 1.0


def test_a_segment_no_fact_triggers_says_what_it_is_not_a_generic_offer():
    rows = [_row(0, 0.6), _row(1, 0.4, basket=12.0)]
    table = _table(rows).assign(order_share=[0.55, 0.45], item_share=[0.41, 0.59])
    average = population(table)
    row = table.to_dict("records")[0]
    (baseline,) = actions.triggered_actions(row, average,
                                            department_shares(row, average.departments),
                                            largest=True)
    assert baseline.key == actions.BASELINE
    assert "trial" not in baseline.text
    assert baseline.fact.text == (
        "no action triggered: no fact of this segment passes an action's threshold, so it shops "
        "like the average shopper; it is the largest segment, 60.0% of shoppers, 55.0% of all "
        "orders and 41.0% of all items")


def test_the_thresholds_are_declared_once_and_listed_for_the_report():
    listed = dict(actions.thresholds())
    assert listed["preferred ordering hour"] == "2 h or more from the average shopper's"
    assert any("1.3x" in needs for needs in listed.values())
    assert personas.VOLUME_RATIO == 1.3 and personas.SLOT_HOURS == 2.0
    assert personas.DEPARTMENT_LIFT == pytest.approx(1.2)


def test_the_readme_shows_the_thresholds_the_code_declares():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for fact, needs in actions.thresholds():
        assert f"| {fact} | {needs} |" in readme
