"""The Python API raises gpuseg's own errors naming the argument (and row); numpy numbers are numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _layout import sample_tables

from gpuseg.config import PipelineConfig
from gpuseg.data import InstacartData
from gpuseg.data.synth import write_partitioned
from gpuseg.errors import ConfigError, DataValidationError


def frames(**changed) -> dict:
    tables = sample_tables()
    given = {"orders": tables["orders"], "order_products": tables["order_products__prior"],
             "products": tables["products"], "aisles": tables["aisles"],
             "departments": tables["departments"]}
    return {**given, **changed}


def test_a_mixed_type_column_names_the_argument_column_and_row():
    orders = sample_tables()["orders"].astype({"user_id": object})
    orders.loc[3, "user_id"] = "x"
    with pytest.raises(DataValidationError) as error:
        InstacartData.from_frames(**frames(orders=orders))
    assert str(error.value) == "orders, column 'user_id', row 4: 'x' is not an integer"


def test_numbers_written_as_text_in_a_mixed_column_are_read_as_a_files_are():
    orders = sample_tables()["orders"].astype({"user_id": object})
    orders.loc[3, "user_id"] = "2"  # user 2's order, as a quoted number in a CSV would be
    data = InstacartData.from_frames(**frames(orders=orders))
    expected = InstacartData.from_frames(**frames())
    pd.testing.assert_frame_equal(data.orders, expected.orders)


def test_a_column_name_given_twice_is_named():
    orders = sample_tables()["orders"]
    doubled = pd.concat([orders, orders[["user_id"]]], axis=1)
    with pytest.raises(DataValidationError, match="^orders: column 'user_id' appears twice"):
        InstacartData.from_frames(**frames(orders=doubled))


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_a_series_instead_of_a_frame_is_named(library):
    aisles = sample_tables()["aisles"]
    if library == "pandas":
        column = aisles["aisle"]
    else:
        # Imported here: the GPU host has no polars, and pytest -m gpu collects this module.
        pl = pytest.importorskip("polars")
        column = pl.from_pandas(aisles)["aisle"]
    with pytest.raises(DataValidationError, match=f"^aisles: expected a pandas, cuDF or polars "
                                                  f"DataFrame or a pyarrow Table \\(got "
                                                  f"{library}.Series\\)"):
        InstacartData.from_frames(**frames(aisles=column))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("k", np.int64(4), 4), ("seed", np.uint32(7), 7), ("pca_variance", np.float32(0.5), 0.5),
    ("k_sweep_range", (np.int64(2), np.int32(6)), (2, 6)), ("rules_sample", np.int16(500), 500),
    ("worker_memory", np.int64(1 << 30), 1 << 30),
])
def test_numpy_numbers_are_taken_as_the_python_numbers_they_hold(field, value, expected):
    extra = {"workers": 1} if field == "worker_memory" else {}
    config = PipelineConfig(**{field: value}, **extra)
    assert getattr(config, field) == expected
    assert type(getattr(config, field)) is type(expected)
    assert config.to_dict()[field] == (list(expected) if isinstance(expected, tuple) else expected)


@pytest.mark.parametrize("value", [np.True_, True, "4", 4.5])
def test_what_is_not_a_number_of_the_right_kind_is_still_refused(value):
    with pytest.raises(ConfigError, match="^k must be 'auto' or an integer >= 2 \\(got "):
        PipelineConfig(k=value)


def test_write_partitioned_takes_a_numpy_partition_count(tmp_path):
    folder = write_partitioned(np.int64(50), tmp_path / "parts", partitions=np.int64(2))
    assert len(list((folder / "orders").iterdir())) == 2
