"""Writing a synthetic data set in the partitioned layout, one block of users at a time.

:func:`write_partitioned` never holds more than one block of users
(:data:`~gpuseg.data.synth.generator.BLOCK_USERS`) and the per-user plan in
memory, whatever the data set's size, and writes the same rows as
:func:`~gpuseg.data.synth.generate_instacart` for the same seed: concatenating
its partition files in order gives the single-folder tables, row for row.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import python_number
from ...errors import ConfigError
from .. import taxonomy
from ..partitions.source import CATALOG_TABLES, PARTITIONED_TABLES
from ..partitions.write import PartitionWriter, write_partition_manifest, write_table
from ..schema import FILE_STEMS
from .generator import SyntheticBlock, generate_block, plan_instacart
from .writer import TRUTH_FILE, dataset_folder


def write_partitioned(n_users: int, out_dir: str | os.PathLike[str], *, partitions: int,
                      seed: int = 0, separation: str = "strong",
                      overwrite: bool = False) -> Path:
    """Generate ``n_users`` synthetic users straight into ``partitions`` parquet partitions.

    Partition ``p`` holds users ``p * n_users // partitions + 1`` to
    ``(p + 1) * n_users // partitions`` with all their orders and product
    rows. The folder is built beside ``out_dir`` and renamed into place at the
    end, so a reader never sees half a data set.

    Parameters
    ----------
    n_users : int
        As :func:`~gpuseg.data.synth.generate_instacart`.
    out_dir : path
        Folder to create (its parent is created if missing).
    partitions : int
        Number of partitions, 1 to ``n_users``.
    seed, separation
        As :func:`~gpuseg.data.synth.generate_instacart`.
    overwrite : bool
        Replace an existing ``out_dir`` that gpuseg wrote as a data set;
        otherwise an existing one is refused.

    Returns
    -------
    Path
        The written folder: ``orders/``, ``order_products__prior/`` and
        ``order_products__train/`` of ``part-NNNNN.parquet`` files, the catalog
        as parquet files, ``personas_truth.csv`` and the manifest
        (:mod:`gpuseg.data.partitions.manifest`).

    Raises
    ------
    ConfigError
        Bad arguments.
    OutputError
        ``out_dir`` may not be written (:func:`gpuseg.outputs.check_output`).
    """
    plan = plan_instacart(n_users, seed=seed, separation=separation)
    partitions = python_number(partitions)
    if not (isinstance(partitions, int) and not isinstance(partitions, bool)
            and 1 <= partitions <= n_users):
        raise ConfigError(f"partitions must be an integer in [1, n_users={n_users:,}] "
                          f"(got {partitions!r})")
    with dataset_folder(out_dir, overwrite=overwrite) as staging:
        for table in PARTITIONED_TABLES:
            (staging / FILE_STEMS[table]).mkdir()
        catalog = {"products": plan.catalog.products, "aisles": taxonomy.aisles_frame(),
                   "departments": taxonomy.departments_frame()}
        for table in CATALOG_TABLES:
            write_table(catalog[table], staging / f"{FILE_STEMS[table]}.parquet", "parquet")
        bounds = [p * n_users // partitions for p in range(partitions + 1)]
        with PartitionWriter(staging) as writer, \
                open(staging / TRUTH_FILE, "w", encoding="utf-8", newline="") as truth:
            for block in range(plan.n_blocks):
                start, stop = plan.block_users(block)
                tables = generate_block(plan, block)
                tables.truth.to_csv(truth, header=block == 0, index=False)
                first = int(np.searchsorted(bounds, start, side="right")) - 1
                for p in range(first, partitions):
                    low, high = max(bounds[p], start), min(bounds[p + 1], stop)
                    if low >= high:
                        break
                    writer.write(p, _users(tables, low + 1, high + 1))
                    if high == bounds[p + 1]:
                        writer.close()
        write_partition_manifest(staging, partitions)
    return Path(out_dir)


def _users(tables: SyntheticBlock, first_id: int, stop_id: int) -> dict[str, pd.DataFrame]:
    """The rows of users ``first_id`` to ``stop_id - 1`` of a block, in the block's row order."""
    orders = tables.orders
    user = orders["user_id"].to_numpy()
    # Orders are sorted by user, so a user range is a slice.
    low, high = np.searchsorted(user, [first_id, stop_id])
    picked = {"orders": orders.iloc[low:high].reset_index(drop=True)}
    order_ids = picked["orders"]["order_id"].to_numpy()
    # Each user's orders take consecutive ids, in user order, and product rows are sorted by
    # order id (generator._assemble): the users' product rows are a slice of ids too.
    ids = [int(order_ids.min()), int(order_ids.max()) + 1] if len(order_ids) else [0, 0]
    for table in PARTITIONED_TABLES[1:]:
        rows = getattr(tables, table)
        start, stop = np.searchsorted(rows["order_id"].to_numpy(), ids)
        picked[table] = rows.iloc[start:stop].reset_index(drop=True)
    return picked
