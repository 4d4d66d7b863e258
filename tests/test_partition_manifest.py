"""A partitioned folder is checked whole: a missing or changed partition is an error, never fewer users."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gpuseg.cli import EXIT_OK, EXIT_USER_ERROR, main
from gpuseg.data import load_instacart
from gpuseg.data.partitions.manifest import MANIFEST_FILE, sha256_of
from gpuseg.data.partitions.source import PARTITIONED_TABLES, find_partitioned
from gpuseg.data.synth import generate_instacart, write_instacart, write_partitioned
from gpuseg.errors import DataValidationError

N_USERS, PARTITIONS = 600, 3


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    return write_partitioned(N_USERS, tmp_path_factory.mktemp("manifest") / "parts",
                             partitions=PARTITIONS, seed=6)


@pytest.fixture()
def parts(written, tmp_path) -> Path:
    """A copy of the layout to damage."""
    return shutil.copytree(written, tmp_path / "parts")


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def user_error(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert err.startswith("gpuseg: error: ") and err.count("\n") == 1, err
    return err


def test_the_manifest_records_users_rows_bytes_and_checksum_of_every_file(written):
    manifest = manifest_of(written)
    assert manifest["partitions"] == PARTITIONS
    assert [part["name"] for part in manifest["parts"]] == [
        f"part-0000{i}.parquet" for i in range(PARTITIONS)]
    for index, part in enumerate(manifest["parts"]):
        # synth --partitions puts users index*N/P+1 .. (index+1)*N/P in partition index.
        assert part["users"] == (index + 1) * N_USERS // PARTITIONS - index * N_USERS // PARTITIONS
        assert set(part["files"]) == set(PARTITIONED_TABLES)
        for table, facts in part["files"].items():
            path = written / table / part["name"]
            assert facts == {"rows": pq.ParquetFile(path).metadata.num_rows,
                             "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def test_a_deleted_orders_file_is_an_error_naming_it_not_fewer_users(parts, tmp_path, capsys):
    # Its product-row files are still there: once, features and run went on without its users.
    (parts / "orders" / "part-00001.parquet").unlink()
    for command in (["features", "--data", str(parts), "--out", str(tmp_path / "f.parquet")],
                    ["run", "--data", str(parts), "--out", str(tmp_path / "run")],
                    ["run", "--data", str(parts), "--out", str(tmp_path / "run"), "--workers", "2"]):
        err = user_error([*command, "--backend", "cpu"], capsys)
        assert f"{parts / 'orders' / 'part-00001.parquet'}: missing; every partition needs a file " \
               "in each table folder, and order_products__prior/part-00001.parquet is there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


@pytest.mark.parametrize("with_manifest", [True, False])
def test_a_partition_missing_from_every_table_is_a_gap_named_by_the_loader(parts, with_manifest):
    for table in PARTITIONED_TABLES:
        (parts / table / "part-00001.parquet").unlink()
    if not with_manifest:  # as written by an older gpuseg: the layout checks still apply
        (parts / MANIFEST_FILE).unlink()
    with pytest.raises(DataValidationError) as error:
        find_partitioned(parts)
    assert str(error.value) == (
        f"{parts}: partition part-00001.parquet is missing from every table folder (the files "
        "run from part-00000.parquet to part-00002.parquet); partitions are numbered from "
        "part-00000 without gaps")


def test_the_last_partition_deleted_from_every_table_is_caught_by_the_manifest(parts):
    for table in PARTITIONED_TABLES:
        (parts / table / "part-00002.parquet").unlink()
    with pytest.raises(DataValidationError, match=r"orders/part-00002.parquet: missing; "
                                                  r"partitions.json lists 3 partitions"):
        load_instacart(parts, cache=False)


def test_a_file_with_other_rows_is_named_with_both_counts(parts):
    path = parts / "order_products__prior" / "part-00000.parquet"
    rows = pd.read_parquet(path)
    rows.iloc[:-10].to_parquet(path, index=False)
    with pytest.raises(DataValidationError) as error:
        find_partitioned(parts)
    recorded = manifest_of(parts)["parts"][0]["files"]["order_products__prior"]
    assert str(error.value).startswith(f"{path}: ")
    assert f"but {MANIFEST_FILE} records" in str(error.value)
    assert f"{recorded['bytes']:,}" in str(error.value) or f"{len(rows):,}" in str(error.value)


def test_bytes_changed_in_place_are_caught_by_the_checksum_when_the_partition_is_read(parts):
    path = parts / "orders" / "part-00002.parquet"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # inside the first data page: same size, same footer
    path.write_bytes(bytes(data))
    assert find_partitioned(parts) is not None  # size and footer still agree
    with pytest.raises(DataValidationError, match=f"{path}: its bytes do not match the SHA-256 "
                                                  f"that {MANIFEST_FILE} records"):
        load_instacart(parts, cache=False)


def test_a_layout_without_a_manifest_still_loads_the_same_data(written, parts):
    (parts / MANIFEST_FILE).unlink()
    checked = load_instacart(written, cache=False)
    unchecked = load_instacart(parts, cache=False)
    pd.testing.assert_frame_equal(checked.orders, unchecked.orders)
    pd.testing.assert_frame_equal(checked.order_products, unchecked.order_products)


def test_a_damaged_manifest_is_named(parts):
    (parts / MANIFEST_FILE).write_text('{"format": 1, "parts": [{"name": "part-00000.parquet"}]}')
    with pytest.raises(DataValidationError, match=f"{parts / MANIFEST_FILE}: not a readable "
                                                  "partition manifest"):
        find_partitioned(parts)


def test_partition_writes_no_empty_partition_and_a_manifest_its_loader_accepts(tmp_path, capsys):
    # More buckets than users (ids 1..5): 3 of user_id % 8 hold nobody.
    flat = write_instacart(generate_instacart(5, seed=2), tmp_path / "flat", fmt="parquet")
    out = tmp_path / "parts"
    assert main(["-q", "partition", "--data", str(flat), "--out", str(out), "--partitions", "8",
                 "--workers", "1"]) == EXIT_OK
    assert capsys.readouterr().out.strip().endswith(
        "in 5 partitions (3 of the 8 buckets held no user)")
    manifest = manifest_of(out)
    assert manifest["partitions"] == 5
    assert all(part["users"] == 1 for part in manifest["parts"])
    reloaded = load_instacart(out, cache=False)
    original = load_instacart(flat, cache=False)
    assert reloaded.orders["user_id"].nunique() == original.orders["user_id"].nunique() == 5
    assert len(reloaded.order_products) == len(original.order_products)
