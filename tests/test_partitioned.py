"""The partitioned layout: synthetic partitions equal the single folder; loading checks them."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpuseg.data import load_instacart
from gpuseg.data.partitions.manifest import MANIFEST_FILE
from gpuseg.data.partitions.source import PARTITIONED_TABLES, find_partitioned
from gpuseg.data.synth import generate_instacart, generator, write_instacart, write_partitioned
from gpuseg.errors import ConfigError, DataValidationError, ResourceLimitError
from gpuseg.features import compute_features

N_USERS = 1_300


@pytest.fixture()
def small_blocks(monkeypatch):
    """Blocks of 500 users, so that 1,300 users make three and partitions cut through them."""
    monkeypatch.setattr(generator, "BLOCK_USERS", 500)


def _concatenated(folder: Path, table: str) -> pd.DataFrame:
    files = sorted((folder / table).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


@pytest.mark.parametrize("partitions", [1, 4, 7])
def test_partitioned_synth_equals_the_single_folder_row_for_row(small_blocks, tmp_path,
                                                                partitions):
    whole = generate_instacart(N_USERS, seed=8, separation="strong")
    folder = write_partitioned(N_USERS, tmp_path / "parts", partitions=partitions, seed=8)
    for table in PARTITIONED_TABLES:
        assert len(list((folder / table).glob("part-*.parquet"))) == partitions
        pd.testing.assert_frame_equal(_concatenated(folder, table), getattr(whole, table))
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "products.parquet"), whole.products)
    flat = write_instacart(whole, tmp_path / "flat")
    truth = "personas_truth.csv"
    assert (folder / truth).read_bytes() == (flat / truth).read_bytes()


def test_each_partition_holds_whole_users_in_ascending_ranges(small_blocks, tmp_path):
    folder = write_partitioned(N_USERS, tmp_path / "parts", partitions=3, seed=8)
    for index in range(3):
        name = f"part-{index:05d}.parquet"
        orders = pd.read_parquet(folder / "orders" / name)
        assert orders["user_id"].min() == index * N_USERS // 3 + 1
        assert orders["user_id"].max() == (index + 1) * N_USERS // 3
        for table in PARTITIONED_TABLES[1:]:
            rows = pd.read_parquet(folder / table / name)
            assert rows["order_id"].isin(orders["order_id"]).all()
            assert rows["order_id"].is_monotonic_increasing


def test_a_block_is_the_same_whichever_blocks_are_generated(small_blocks):
    plan = generator.plan_instacart(N_USERS, seed=8, separation="realistic")
    alone = generator.generate_block(plan, 2)
    whole = generate_instacart(N_USERS, seed=8, separation="realistic")
    tail = whole.orders[whole.orders["user_id"] > 1_000].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.orders, tail)


def test_synth_partitions_are_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"partitions must be an integer in \[1, n_users=10\]"):
        write_partitioned(10, tmp_path / "parts", partitions=11)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("layouts")
    parts = write_partitioned(900, root / "parts", partitions=3, seed=4)
    flat = write_instacart(generate_instacart(900, seed=4), root / "flat", fmt="parquet")
    return parts, flat


def test_the_loader_reads_the_partitioned_layout_as_the_single_folder(partitioned, cpu_backend):
    parts, flat = partitioned
    from_parts = load_instacart(parts, backend=cpu_backend, cache=False)
    from_flat = load_instacart(flat, backend=cpu_backend, cache=False)
    assert dict(from_parts.cleaning) == dict(from_flat.cleaning)
    a = compute_features(from_parts, cpu_backend).table
    b = compute_features(from_flat, cpu_backend).table
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_bad_value_names_the_partition_file_and_its_row(partitioned, cpu_backend, tmp_path):
    folder = shutil.copytree(partitioned[0], tmp_path / "bad")
    # Without its manifest (a hand-made layout): the values themselves are checked.
    (folder / MANIFEST_FILE).unlink()
    path = folder / "orders" / "part-00001.parquet"
    orders = pd.read_parquet(path)
    orders.loc[41, "order_hour_of_day"] = 31
    pq.write_table(pa.Table.from_pandas(orders, preserve_index=False), path)
    with pytest.raises(DataValidationError) as error:
        load_instacart(folder, backend=cpu_backend, cache=False)
    assert str(error.value) == (f"{path}, column 'order_hour_of_day', row 42: 31 is outside 0-23")


def test_a_user_in_two_partitions_is_refused_naming_both_files(partitioned, cpu_backend,
                                                               tmp_path):
    folder = shutil.copytree(partitioned[0], tmp_path / "split")
    (folder / MANIFEST_FILE).unlink()
    first, second = (folder / "orders" / f"part-0000{i}.parquet" for i in (0, 1))
    orders = pd.read_parquet(second)
    orders.loc[orders.index[:1], "user_id"] = np.int32(1)
    orders.loc[orders.index[:1], "order_number"] = np.int16(99)
    pq.write_table(pa.Table.from_pandas(orders, preserve_index=False), second)
    with pytest.raises(DataValidationError, match="user 1 has orders in both") as error:
        load_instacart(folder, backend=cpu_backend, cache=False)
    assert str(first) in str(error.value) and str(second) in str(error.value)


def test_a_partition_without_its_product_rows_is_named(partitioned, tmp_path):
    folder = shutil.copytree(partitioned[0], tmp_path / "missing")
    (folder / "order_products__prior" / "part-00002.parquet").unlink()
    with pytest.raises(DataValidationError, match="order_products__prior/part-00002.parquet: "
                                                  "missing"):
        find_partitioned(folder)


def test_one_process_refuses_a_layout_too_big_for_it_and_names_workers(partitioned, cpu_backend,
                                                                       monkeypatch):
    monkeypatch.setenv("GPUSEG_MEMORY_LIMIT_BYTES", str(1 << 20))
    with pytest.raises(ResourceLimitError, match=r"--workers N") as error:
        load_instacart(partitioned[0], backend=cpu_backend, cache=False)
    assert "product rows in 3 partitions" in str(error.value)
