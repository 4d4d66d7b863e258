"""Outputs are staged beside their target; the next write cleans what a kill left; modes follow the umask."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _layout import hidden_entries as hidden
from _layout import killed_while_writing

from gpuseg.cli import EXIT_OK, main
from gpuseg.data.synth import generate_instacart, write_instacart, write_partitioned
from gpuseg.outputs import output_folder, write_parquet
from gpuseg.staging import atomic_directory, write_replacing

TESTS = Path(__file__).parent
#: gpuseg synth --partitions, stalled once the first partition file is being written.
STALLED_SYNTH = """
import sys, time
import gpuseg.data.partitions.write as write
real_write = write.PartitionWriter.write
def stall(self, partition, frames):
    real_write(self, partition, frames)
    print("writing", flush=True)
    time.sleep(120)
write.PartitionWriter.write = stall
from gpuseg.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_after_sigkill_of_synth_partitions_a_rerun_leaves_nothing_behind(tmp_path):
    out = tmp_path / "parts"
    args = ["synth", "--users", "300", "--partitions", "3", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    pid = killed_while_writing(STALLED_SYNTH, args, env)
    (staging,) = hidden(tmp_path)
    assert staging.startswith(f".parts.tmp-{pid}-")

    assert main(["-q", *args]) == EXIT_OK
    assert hidden(tmp_path) == []
    assert len(list((out / "orders").iterdir())) == 3


def test_a_file_staged_by_a_killed_write_is_removed_by_the_next_write(tmp_path, dead_pid):
    left = tmp_path / f".features.parquet.tmp-{dead_pid}-0a1b2c3d"
    left.write_bytes(b"half a parquet file")
    live = tmp_path / f".features.parquet.tmp-{os.getpid()}-0a1b2c3d"
    live.write_bytes(b"a write still running")
    write_parquet(pd.DataFrame({"x": [1]}), tmp_path / "features.parquet", kind="features",
                  force=False)
    assert hidden(tmp_path) == [live.name]


def test_replacing_a_file_with_a_folder_leaves_no_old_file_behind(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert hidden(tmp_path) == []


def test_a_failed_file_write_leaves_neither_a_partial_nor_a_changed_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("before")

    def half_then_fail(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_replacing(target, half_then_fail)
    assert target.read_text() == "before"
    assert hidden(tmp_path) == []


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_and_files_follow_the_umask(umask, tmp_path):
    folder_mode, file_mode = 0o777 & ~umask, 0o666 & ~umask
    flat = write_instacart(generate_instacart(100, seed=1), tmp_path / "flat")
    parts = write_partitioned(100, tmp_path / "parts", partitions=2)
    with output_folder(tmp_path / "run", kind="run", force=False) as staging:
        (staging / "model").mkdir()
    for folder in (flat, parts, parts / "orders", tmp_path / "run", tmp_path / "run" / "model"):
        assert mode(folder) == folder_mode, folder
    for path in (flat / "orders.csv", parts / "orders" / "part-00000.parquet"):
        assert mode(path) == file_mode, path


def test_a_cache_entry_staged_by_a_killed_load_is_removed_by_the_next_load(tmp_path, dead_pid):
    from gpuseg.data import load_instacart
    from gpuseg.data.cache import cache_entry

    data = write_instacart(generate_instacart(100, seed=1), tmp_path / "data", fmt="parquet")
    cache = tmp_path / "cache"
    entry = cache_entry(data.resolve(), cache)
    entry.parent.mkdir(parents=True)
    left = entry.with_name(f".{entry.name}.tmp-{dead_pid}-0a1b2c3d")
    left.mkdir()
    load_instacart(data, cache_dir=cache)
    assert entry.is_dir() and not left.exists()
