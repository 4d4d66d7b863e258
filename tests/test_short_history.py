"""How well a segment holds for a new shopper: histories cut to their first orders, assigned
by the run's model, against the full-history segment."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpuseg.assign import assign_tables
from gpuseg.config import PipelineConfig
from gpuseg.data import load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.data.tables import InstacartData
from gpuseg.pipeline import segment
from gpuseg.result import SegmentationResult
from gpuseg.short_history import CUTS, first_orders, users_history


def _tables(orders: list[tuple[int, int, int]], products: list[int]) -> InstacartData:
    """(order_id, user_id, order_number) rows; ``products`` lists the orders that have items."""
    frame = pd.DataFrame(orders, columns=["order_id", "user_id", "order_number"])
    items = pd.DataFrame({"order_id": products, "product_id": 1})
    empty = pd.DataFrame()
    return InstacartData(orders=frame, order_products=items, products=empty, aisles=empty,
                         departments=empty)


def test_a_history_is_cut_to_its_first_orders_with_products_by_order_number():
    data = _tables([(10, 1, 3), (11, 1, 1), (12, 1, 2), (13, 1, 4),    # user 1: 4 orders
                    (20, 2, 1), (21, 2, 2),                            # user 2: 2 orders
                    (30, 3, 1), (31, 3, 2), (32, 3, 3), (33, 3, 4)],   # user 3: order 31 empty
                   products=[10, 11, 12, 13, 20, 21, 30, 32, 33])
    cut = first_orders(data, 2)
    kept = cut.orders.groupby("user_id")["order_id"].apply(sorted).to_dict()
    # User 2 has no longer history to cut; user 3's empty order does not count.
    assert kept == {1: [11, 12], 3: [30, 32]}
    assert sorted(cut.order_products["order_id"]) == [11, 12, 30, 32]


def test_users_history_keeps_only_those_users_and_their_items():
    data = _tables([(10, 1, 1), (20, 2, 1), (30, 3, 1)], products=[10, 20, 30, 30])
    picked = users_history(data, np.array([1, 3]))
    assert sorted(picked.orders["user_id"]) == [1, 3]
    assert sorted(picked.order_products["order_id"]) == [10, 30, 30]


@pytest.fixture(scope="module")
def run(tmp_path_factory, cpu_backend) -> tuple[SegmentationResult, InstacartData]:
    folder = write_instacart(generate_instacart(1_500, seed=4, separation="realistic"),
                             tmp_path_factory.mktemp("short") / "data", fmt="parquet")
    data = load_instacart(folder, backend=cpu_backend)
    # Every segmented shopper measured, so that the check below can take them all.
    config = PipelineConfig(backend="cpu", seed=2, short_history_sample=None)
    return segment(data, config, backend=cpu_backend, embed=False), data


def test_the_run_measures_what_gpuseg_assign_gives_the_cut_histories(run, cpu_backend):
    """The measurement is `gpuseg assign --min-orders 1` on each shopper's first 2, 3, 4
    orders, compared with the run's own segment."""
    result, data = run
    short = result.metrics.short_history
    assert short is not None and short.cuts == CUTS
    full = result.segments.set_index("user_id")["segment"]
    assert short.n_sample == len(full)
    for n, users, kept in zip(short.cuts, short.users, short.agreement):
        cut = first_orders(users_history(data, full.index.to_numpy()), n)
        assigned = assign_tables(result.model, cut, cpu_backend, min_orders=1).users
        assigned = assigned.set_index("user_id")["segment"]
        assert users == len(assigned) > 0
        assert kept == pytest.approx(float((assigned == full.loc[assigned.index]).mean()))
    assert 0.0 < short.agreement[0] < 1.0


def test_metrics_json_and_the_report_carry_the_measurement(run):
    from gpuseg.report import content, guide

    result, _ = run
    entry = result.metrics.to_dict()["short_history"]
    assert [row["orders"] for row in entry["by_orders"]] == list(CUTS)
    html = guide.new_shoppers(content.short_history_table(result), result.k)
    for kept in result.metrics.short_history.agreement:
        assert f"{kept:.0%}" in html
    assert "gpuseg assign --min-orders" in html


def test_rows_without_an_order_history_give_no_section():
    """Rows opened without their orders (no history to cut) measure nothing, and the report
    then says nothing about newer shoppers rather than showing empty numbers."""
    from _fake_result import fake_result, with_output

    from gpuseg.report import content, guide
    from gpuseg.rows import InMemoryRows
    from gpuseg.short_history import ShortHistory
    from gpuseg.stages.short_history import ShortHistoryStage

    assert InMemoryRows(backend=None, n_users=3).histories(np.array([1])) is None
    for output in (None, ShortHistory(cuts=(), users=(), agreement=(), n_sample=0)):
        result = with_output(fake_result(), ShortHistoryStage, output)
        assert content.short_history_table(result) is None
        assert guide.new_shoppers(content.short_history_table(result), result.k) == ""
