"""Writing the partitioned layout: tables and partition files, whoever produces the rows.

``gpuseg synth --partitions`` (:mod:`gpuseg.data.synth.out_of_core`) writes
through :class:`PartitionWriter` and :func:`write_partition_manifest`;
``gpuseg partition`` (:mod:`gpuseg.distributed.shuffle`) writes its files with
Dask and the same manifest. The reading side is
:mod:`gpuseg.data.partitions.source`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ..schema import FILE_STEMS
from .manifest import part_facts, write_manifest
from .source import PARTITIONED_TABLES, partition_file_name


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write ``frame`` as a parquet or an unquoted CSV file (the Kaggle files' spelling)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        # pyarrow writes tens of millions of rows far faster than DataFrame.to_csv, and
        # writes NaN (null) as an empty field like the Kaggle files do.
        # Unquoted like the Kaggle files; generated values never hold a comma or quote,
        # and pyarrow raises rather than write an ambiguous field if one ever does. The
        # header is written here because pyarrow < 18 always quotes column names.
        with open(path, "wb") as sink:
            sink.write((",".join(frame.columns) + "\n").encode())
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False,
                                                              quoting_style="none"))


def partition_tables(folder: Path) -> dict[str, str]:
    """Table -> its folder's name, for each partitioned table ``folder`` has a folder of."""
    return {table: FILE_STEMS[table] for table in PARTITIONED_TABLES
            if (folder / FILE_STEMS[table]).is_dir()}


def write_partition_manifest(folder: Path, n_partitions: int) -> None:
    """Read back the partitions written into ``folder`` and record them in its manifest."""
    tables = partition_tables(folder)
    write_manifest(folder, [part_facts(folder, partition_file_name(i), tables)
                            for i in range(n_partitions)])


class PartitionWriter:
    """Appends row groups to the files of the partition being written, one at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, partition: int, frames: dict[str, pd.DataFrame]) -> None:
        for table, frame in frames.items():
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            if table not in self.writers:
                path = self.folder / FILE_STEMS[table] / partition_file_name(partition)
                self.writers[table] = pq.ParquetWriter(path, arrow.schema)
            self.writers[table].write_table(arrow)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
