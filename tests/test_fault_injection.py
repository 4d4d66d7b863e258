"""Killing a run never leaves anything half-written, and the next run just works.

``gpuseg -v run`` logs ``stage <name>: <seconds>`` as each stage ends; the
tests read those lines from a real subprocess and send SIGKILL, SIGTERM or
SIGINT right there, at a stage boundary. Afterwards there must be no run
directory, no staging folder, no damaged cache entry and no change to the
input. A kill in the final write is staged with a stand-in result (so that it
costs seconds, not a pipeline run): SIGTERM cleans up at once; after SIGKILL
the staging folder stays until the next write of the same run directory
removes it, and that rerun (the real pipeline) succeeds.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from _fake_result import fake_result
from _layout import folder_digest, killed_while_writing
from _layout import hidden_entries as leftovers

import gpuseg.pipeline
import gpuseg.report
from cpu_fallback.numba_cache import cache_folder
from gpuseg.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, main
from gpuseg.data import CacheWarning, load_instacart
from gpuseg.data.synth import generate_instacart, write_instacart
from gpuseg.staging import atomic_directory, recover_interrupted

TESTS = Path(__file__).parent
#: A light run: small samples everywhere, three segments.
RUN_OPTIONS = ["--backend", "cpu", "--k", "3", "--k-range", "2", "4", "--sweep-sample", "200",
               "--silhouette-sample", "200", "--stability-sample", "200", "--dbscan-sample", "200",
               "--umap-sample", "200"]
# A shell that runs the tests in the background starts its children with SIGINT ignored, and
# Python then leaves it ignored; restore Python's own handler, as a terminal session has it.
CLI = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
       "sys.argv[0] = 'gpuseg'; runpy.run_module('gpuseg.cli', run_name='__main__')")
# The run command with a stand-in result and a report that stalls once it has begun writing.
STALLED_WRITE = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
import gpuseg.pipeline, gpuseg.report
from _fake_result import fake_result
def stall(result, folder, **_):
    (folder / "report.html").write_text("half a report")
    print("writing", flush=True)
    time.sleep(120)
gpuseg.pipeline.segment = lambda *args, **kwargs: fake_result()
gpuseg.report.write_report = stall
from gpuseg.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One data folder (its parquet cache already built) and an environment pointing at it."""
    root = tmp_path_factory.mktemp("faults")
    data = write_instacart(generate_instacart(400, seed=2), root / "data", fmt="parquet")
    cache = root / "cache"
    load_instacart(data, cache_dir=cache)
    env = {**os.environ, "GPUSEG_CACHE_DIR": str(cache), "PYTHONPATH": str(TESTS.parent)}
    return root, data, cache, env


def run_until(args: list[str], stage: str, sig: int, env: dict) -> tuple[int, str]:
    """Start ``gpuseg -v run``, send ``sig`` as soon as ``stage`` has ended; exit code, stderr."""
    process = subprocess.Popen([sys.executable, "-c", CLI, "-v", "run", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(f"INFO gpuseg.timing: stage {stage}:"):
            process.send_signal(sig)
            break
    lines.append(process.stderr.read())
    return process.wait(timeout=120), "".join(lines)


def assert_cache_intact(cache: Path, data: Path) -> None:
    """One cache entry, nothing beside it, and it is trusted (no rebuild, no warning).

    The folder of umap-learn's compiled kernels may sit beside it: a cold cache is compiled
    into by a background process that the run started (cpu_fallback.numba_cache).
    """
    assert leftovers(cache) == []
    kernels = cache_folder(cache).relative_to(cache).parts[0]
    assert len([p for p in cache.iterdir() if p.name != kernels]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        load_instacart(data, cache_dir=cache)


KILLS = [("load", signal.SIGKILL, -signal.SIGKILL, None),
         ("k_sweep", signal.SIGTERM, EXIT_TERMINATED, "gpuseg: terminated (SIGTERM)"),
         ("dbscan", signal.SIGINT, EXIT_INTERRUPTED, "gpuseg: interrupted")]


def test_a_run_killed_at_a_stage_boundary_leaves_nothing_behind(world):
    root, data, cache, env = world
    before = folder_digest(data)
    outcomes = {}

    def kill(stage: str, sig: int) -> None:
        out = root / f"killed-after-{stage}"
        outcomes[stage] = run_until(["--data", str(data), "--out", str(out), *RUN_OPTIONS],
                                    stage, sig, env)

    # The three runs share the two cores: together they take little longer than the longest.
    threads = [threading.Thread(target=kill, args=(stage, sig)) for stage, sig, _, _ in KILLS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for stage, _, code, last_line in KILLS:
        returncode, stderr = outcomes[stage]
        assert f"stage {stage}:" in stderr, stderr
        assert returncode == code, stderr
        if last_line is not None:
            assert stderr.strip().splitlines()[-1].startswith(last_line), stderr
            assert "Traceback" not in stderr
    assert sorted(p.name for p in root.iterdir()) == ["cache", "data"]
    assert_cache_intact(cache, data)
    assert folder_digest(data) == before


def test_sigterm_while_the_run_directory_is_written_removes_the_staging_folder(
        world, tmp_path, monkeypatch, capsys):
    _, data, _, _ = world
    written = []

    def terminated_midway(result, folder, **_):
        (folder / "report.html").write_text("half a report")
        written.append(folder)
        os.kill(os.getpid(), signal.SIGTERM)  # main turns it into an exception right here
        raise AssertionError("SIGTERM did not interrupt the write")

    monkeypatch.setattr(gpuseg.pipeline, "segment", lambda *args, **kwargs: fake_result())
    monkeypatch.setattr(gpuseg.report, "write_report", terminated_midway)
    handler = signal.getsignal(signal.SIGTERM)
    code = main(["run", "--data", str(data), "--out", str(tmp_path / "run"), "--backend", "cpu"])
    assert code == EXIT_TERMINATED
    assert capsys.readouterr().err.strip() == ("gpuseg: terminated (SIGTERM); nothing "
                                               "half-written was left behind")
    assert written and not written[0].exists()
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is handler  # restored once main returns


def test_after_sigkill_in_the_final_write_a_rerun_cleans_up_and_succeeds(world, tmp_path):
    _, data, _, env = world
    out = tmp_path / "run"
    args = ["--data", str(data), "--out", str(out), *RUN_OPTIONS]
    pid = killed_while_writing(STALLED_WRITE, ["run", *args], env)
    # What a hard kill leaves: the half-written staging folder, named after the dead process.
    (staging,) = leftovers(tmp_path)
    assert staging.startswith(f".run.tmp-{pid}-")
    assert not out.exists()

    assert main(["run", *args]) == EXIT_OK
    assert (out / "report.html").stat().st_size > len("half a report")
    assert (out / "segments.parquet").is_file()
    assert leftovers(tmp_path) == []


# -- what a hard kill can leave, and how the next write treats it -------------------------------

@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_previous_run_moved_aside_by_a_killed_replace_is_put_back(tmp_path, dead_pid):
    # Killed between moving the old run aside and renaming the new one into place.
    aside = tmp_path / f".run.old-{dead_pid}-0a1b2c3d"
    aside.mkdir()
    (aside / "metrics.json").write_text("{}")
    half = tmp_path / f".run.tmp-{dead_pid}-x1y2"
    half.mkdir()
    recover_interrupted(tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").read_text() == "{}"
    assert leftovers(tmp_path) == []


def test_a_previous_run_left_aside_after_the_new_one_landed_is_removed(tmp_path, dead_pid):
    (tmp_path / "run").mkdir()
    (tmp_path / f".run.old-{dead_pid}-0a1b2c3d").mkdir()
    with atomic_directory(tmp_path / "run") as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["new.txt"]
    assert leftovers(tmp_path) == []


def test_staging_folders_of_live_processes_and_other_targets_are_left_alone(tmp_path, dead_pid):
    keep = [f".run.tmp-{os.getpid()}-abc", ".run.tmp-oldstyle", f".runs.tmp-{dead_pid}-abc",
            f".other.tmp-{dead_pid}-abc"]
    for name in keep:
        (tmp_path / name).mkdir()
    recover_interrupted(tmp_path / "run")
    assert leftovers(tmp_path) == sorted(keep)


def test_an_interrupt_between_the_two_renames_puts_the_previous_run_back(tmp_path, monkeypatch):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace = os.replace

    def interrupted_second_rename(source, destination):
        if Path(source).name.startswith(".run.tmp-"):
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", interrupted_second_rename)
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(target) as staging:
            (staging / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert leftovers(tmp_path) == []
