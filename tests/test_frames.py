"""Tables already in memory: InstacartData.from_frames validates them exactly as files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _layout import sample_tables, write_layout

from gpuseg import InstacartData, PipelineConfig, segment
from gpuseg.data import load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.errors import DataValidationError


def frames_of(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The Kaggle tables as from_frames takes them: prior and train product rows as one frame."""
    order_products = pd.concat([tables["order_products__prior"], tables["order_products__train"]],
                               ignore_index=True)
    return {"orders": tables["orders"], "order_products": order_products,
            "products": tables["products"], "aisles": tables["aisles"],
            "departments": tables["departments"]}


def assert_same_data(a: InstacartData, b: InstacartData) -> None:
    for name in ("orders", "order_products", "products", "aisles", "departments"):
        pd.testing.assert_frame_equal(getattr(a, name).reset_index(drop=True),
                                      getattr(b, name).reset_index(drop=True),
                                      check_categorical=False)
    assert dict(a.cleaning) == dict(b.cleaning)


def test_pandas_frames_give_what_the_same_files_give(tmp_path):
    tables = sample_tables()
    from_files = load_instacart(write_layout(tmp_path / "in", tables), cache=False)
    from_memory = InstacartData.from_frames(**frames_of(tables))
    assert_same_data(from_memory, from_files)
    assert from_memory.source == "frames" and len(from_memory.fingerprint) == 16
    assert InstacartData.from_frames(**frames_of(tables)).fingerprint == from_memory.fingerprint


def test_polars_frames_give_what_pandas_frames_give():
    # polars is a test extra, absent where the GPU check runs (only the RAPIDS wheels go there).
    pl = pytest.importorskip("polars")
    tables = frames_of(sample_tables())
    from_pandas = InstacartData.from_frames(**tables)
    from_polars = InstacartData.from_frames(**{name: pl.from_pandas(frame)
                                               for name, frame in tables.items()})
    assert_same_data(from_polars, from_pandas)


def test_a_bad_value_in_a_frame_names_the_argument_column_and_row():
    tables = frames_of(sample_tables())
    tables["orders"] = tables["orders"].assign(
        order_hour_of_day=[8, 9, 23, 0, 12, 24, 10, 11])
    with pytest.raises(DataValidationError,
                       match=r"^orders, column 'order_hour_of_day', row 6: 24 is outside 0-23$"):
        InstacartData.from_frames(**tables)


def test_a_missing_column_and_an_unknown_product_are_handled_like_files():
    tables = frames_of(sample_tables())
    with pytest.raises(DataValidationError, match=r"^aisles: missing column\(s\) 'aisle'"):
        InstacartData.from_frames(**{**tables, "aisles": tables["aisles"].rename(
            columns={"aisle": "name"})})
    extra = pd.DataFrame({"order_id": [10], "product_id": [99], "add_to_cart_order": [3],
                          "reordered": [0]})
    with pytest.warns(UserWarning, match="order_products"):
        data = InstacartData.from_frames(**{**tables, "order_products": pd.concat(
            [tables["order_products"], extra], ignore_index=True)})
    assert data.cleaning["order_products_unknown_product"] == 1


def test_something_that_is_not_a_frame_is_refused():
    tables = frames_of(sample_tables())
    with pytest.raises(DataValidationError, match="departments: expected a pandas, cuDF or polars"):
        InstacartData.from_frames(**{**tables, "departments": [("produce", 4)]})


def test_segment_takes_frames_and_gives_the_labels_of_the_same_folder(tmp_path, cpu_backend):
    synth = generate_instacart(1_500, seed=2, separation="strong")
    folder = write_instacart(synth, tmp_path / "data", fmt="parquet")
    data = InstacartData.from_frames(**frames_of(synth.tables()))
    config = PipelineConfig(backend="cpu", seed=1, k_sweep_range=(3, 6), stability_seeds=2,
                            bootstrap_rounds=1)
    in_memory = segment(data, config, embed=False)
    on_disk = segment(folder, config, backend=cpu_backend, embed=False)
    np.testing.assert_array_equal(in_memory.segments["segment"], on_disk.segments["segment"])
    assert in_memory.metrics.to_dict()["input"]["source"] == "frames"
