"""No command writes over, into or around its inputs or another run, and --force replaces only gpuseg's own.

The table below runs every command that writes against every relation its
output can have to its inputs and to existing outputs. Each case is either
refused (exit 2, one line naming ``--out``, before any work) or accepted;
either way every input is byte-identical afterwards and a refused output is
left as it was.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from _fake_result import fake_result
from _layout import folder_digest, hidden_entries

import gpuseg.pipeline
import gpuseg.report
from gpuseg.cli import EXIT_OK, EXIT_USER_ERROR, main
from gpuseg.data.synth import generate_instacart, write_instacart, write_partitioned
from gpuseg.errors import OutputError
from gpuseg.outputs import MARK_FILE, check_output, output_kind, write_output_file, write_parquet
from gpuseg.rundir import write_run

#: What each command writes (gpuseg.outputs.KINDS).
COMMAND_KINDS = {"synth": "dataset", "partition": "dataset", "features": "features", "run": "run",
                 "demo": "run", "assign": "assignments", "compare": "comparison"}


@dataclass(frozen=True)
class World:
    """Inputs and existing outputs every case starts from (never written by the cases)."""

    root: Path
    data: Path
    run_a: Path
    run_b: Path
    other_run: Path
    exemplars: dict

    def inputs(self, command: str) -> list[Path]:
        """What ``command`` reads, as the table's commands are given it."""
        return {"partition": [self.data], "features": [self.data], "run": [self.data],
                "assign": [self.run_a, self.data], "compare": [self.run_a, self.run_b]
                }.get(command, [])

    def digests(self) -> dict[str, str]:
        return {path.name: folder_digest(path)
                for path in (self.data, self.run_a, self.run_b, self.other_run)}


def _report_stub(result, folder: Path, **_: object) -> None:
    """What the tables need of a report: a file (the figures would cost seconds per run)."""
    (folder / "report.html").write_text("report")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    data = write_instacart(generate_instacart(400, seed=3), root / "data", fmt="parquet")
    with mock.patch.object(gpuseg.report, "write_report", _report_stub):
        run_a = write_run(fake_result(), root / "run_a")
    # Copies: a run directory is recognised by its mark, wherever it was written.
    runs = {"run_a": run_a, **{name: _copy(run_a, root / name) for name in ("run_b", "other_run")}}
    exemplars = root / "exemplars"
    exemplars.mkdir()
    frame = pd.DataFrame({"user_id": [1, 2], "segment": [0, 1]})
    comparison = exemplars / "comparison.csv"
    write_output_file(comparison, lambda path: path.write_text(
        "from_segment,from_persona,to_segment,to_persona,users,share_of_from\n0,a,0,a,1,1.0\n"),
        kind="comparison", force=False)
    made = {
        "run": runs["other_run"], "dataset": data,
        "features": write_parquet(frame, exemplars / "features.parquet", kind="features",
                                  force=False),
        "assignments": write_parquet(frame, exemplars / "assignments.parquet",
                                     kind="assignments", force=False, index=False),
        "comparison": comparison,
    }
    return World(root=root, data=data, run_a=runs["run_a"], run_b=runs["run_b"],
                 other_run=runs["other_run"], exemplars=made)


def argv(command: str, world: World, out: Path, force: bool) -> list[str]:
    """The command line of ``command`` writing ``out``; light settings, CPU."""
    data, run_a, run_b = str(world.data), str(world.run_a), str(world.run_b)
    args = {
        "synth": ["synth", "--users", "300", "--format", "parquet"],
        "partition": ["partition", "--data", data, "--partitions", "2", "--workers", "1"],
        "features": ["features", "--data", data, "--backend", "cpu"],
        "run": ["run", "--data", data, "--backend", "cpu"],
        "demo": ["demo", "--users", "500", "--backend", "cpu"],
        "assign": ["assign", "--model", run_a, "--data", data, "--backend", "cpu"],
        "compare": ["compare", run_a, run_b],
    }[command]
    return ["-q", *args, "--out", str(out), *(["--force"] if force else [])]


def _copy(source: Path, target: Path) -> Path:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)
    return target


def _is_input(command, world, tmp_path):
    return world.inputs(command)[0], True


def _inside_input(command, world, tmp_path):
    # assign --out RUN/segments.parquet once cut that file to 6 columns.
    inside = {"assign": world.run_a / "segments.parquet", "compare": world.run_a / "segments.parquet",
              "features": world.data / "orders.parquet"}
    return inside.get(command, world.inputs(command)[0] / "out"), True


def _holds_input(command, world, tmp_path):
    return world.root, True


def _another_runs_file(command, world, tmp_path):
    kind = COMMAND_KINDS[command]
    inside = world.other_run / ("model" if kind in ("run", "dataset") else "segments.parquet")
    return inside, True


def _existing_output(command, world, tmp_path):
    kind = COMMAND_KINDS[command]
    source = world.exemplars[kind]
    return _copy(source, tmp_path / f"existing{''.join(source.suffixes)}"), False


def _existing_output_with_force(command, world, tmp_path):
    return _existing_output(command, world, tmp_path)[0], True


def _foreign_folder(command, world, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("not gpuseg's")
    return folder, True


def _foreign_file(command, world, tmp_path):
    # The same extension as gpuseg's own output: the mark decides, not the name.
    suffix = {"features": ".parquet", "assignments": ".parquet", "comparison": ".csv"}
    path = tmp_path / f"mine{suffix.get(command, '')}"
    if path.suffix == ".parquet":
        pd.DataFrame({"user_id": [1]}).to_parquet(path)
    else:
        path.write_text("user_id\n1\n")
    return path, True


def _parent_is_a_file(command, world, tmp_path):
    (tmp_path / "a-file").write_text("a file")
    return tmp_path / "a-file" / "out", False


#: relation -> (how it builds ``out`` and --force, the refusal's words; None: accepted).
RELATIONS = {
    "is an input": (_is_input, "is the input"),
    "inside an input": (_inside_input, "lies inside the input"),
    "holds an input": (_holds_input, "holds the input"),
    "another run's file": (_another_runs_file, "lies inside the gpuseg run directory"),
    "existing output, no --force": (_existing_output, "already exists; pass --force"),
    "existing output, --force": (_existing_output_with_force, None),
    "foreign folder, --force": (_foreign_folder, "is a folder gpuseg did not write"),
    "foreign file, --force": (_foreign_file, "is a file gpuseg did not write"),
    "parent is a file": (_parent_is_a_file, "is a file, not a folder"),
}
CASES = [(command, relation) for command in COMMAND_KINDS for relation in RELATIONS
         if not (relation.endswith("input") and command in ("synth", "demo"))]  # they read none


@pytest.fixture()
def fake_segment(monkeypatch):
    """run and demo segment with a stand-in result (and a stub report); the calls are recorded."""
    calls = []

    def segment(*args, **kwargs):
        calls.append(args)
        return fake_result()

    monkeypatch.setattr(gpuseg.pipeline, "segment", segment)
    monkeypatch.setattr(gpuseg.report, "write_report", _report_stub)
    return calls


@pytest.mark.parametrize(("command", "relation"), CASES)
def test_every_command_against_every_output_relation(world, command, relation, tmp_path,
                                                     capsys, fake_segment):
    build, refusal = RELATIONS[relation]
    out, force = build(command, world, tmp_path)
    inputs_before = world.digests()
    out_before = folder_digest(out) if out.is_dir() else (out.read_bytes() if out.is_file()
                                                          else None)
    code = main(argv(command, world, out, force))
    err = capsys.readouterr().err
    if refusal is None:
        assert code == EXIT_OK, err
        assert output_kind(out) == COMMAND_KINDS[command]
    else:
        assert code == EXIT_USER_ERROR, err
        assert err.count("\n") == 1 and err.startswith("gpuseg: error: --out"), err
        assert refusal in err
        assert fake_segment == []  # refused before the first stage
        after = folder_digest(out) if out.is_dir() else (out.read_bytes() if out.is_file()
                                                         else None)
        assert after == out_before
    assert world.digests() == inputs_before
    # Nothing staged or moved aside is left (run --out FILE --force once left .FILE.old-*).
    for folder in (world.root, tmp_path):
        assert hidden_entries(folder) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes in any folder whatever its mode")
@pytest.mark.parametrize("command", sorted(COMMAND_KINDS))
def test_a_parent_folder_that_cannot_be_written_is_refused_before_any_work(
        world, command, tmp_path, capsys, fake_segment):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(argv(command, world, locked / "out", force=False))
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and err.count("\n") == 1, err
    assert f"--out {locked / 'out'}: cannot write in {locked} (permission denied)" in err
    assert fake_segment == []


def test_a_run_whose_out_is_under_a_file_stops_before_the_first_stage(world, tmp_path, capsys,
                                                                      fake_segment):
    (tmp_path / "report").write_text("a file where a folder was meant")
    code = main(argv("run", world, tmp_path / "report" / "run", force=False))
    assert code == EXIT_USER_ERROR
    assert fake_segment == []
    assert capsys.readouterr().err == (
        f"gpuseg: error: --out {tmp_path / 'report' / 'run'}: {tmp_path / 'report'} is a file, "
        "not a folder; choose an output path in a folder\n")


# -- the rules, path by path ----------------------------------------------------------------------

def test_paths_are_compared_resolved_through_symlinks_and_dots(world, tmp_path, monkeypatch):
    link = tmp_path / "link"
    link.symlink_to(world.data)
    monkeypatch.chdir(world.data)
    for out in (link, tmp_path / "link" / "out", Path("."), Path("sub") / ".." / "x.parquet",
                world.data / ".." / world.data.name):
        with pytest.raises(OutputError, match="the input data"):
            check_output(out, kind="features", force=True, inputs={"data": world.data})


def test_an_empty_folder_is_replaced_with_force(tmp_path):
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", kind="run", force=True)


def test_each_kind_replaces_only_its_own_kind(world, tmp_path):
    features = _copy(world.exemplars["features"], tmp_path / "features.parquet")
    with pytest.raises(OutputError, match="is a gpuseg features file, not a gpuseg assignments "
                                          "file; force=True replaces only"):
        check_output(features, kind="assignments", force=True)
    with pytest.raises(OutputError, match="is a gpuseg data set folder, not a gpuseg run"):
        check_output(_copy(world.data, tmp_path / "data"), kind="run", force=True)


def test_a_run_directory_written_before_marks_is_still_recognised(world, tmp_path):
    legacy = _copy(world.run_a, tmp_path / "legacy")
    (legacy / MARK_FILE).unlink()
    assert output_kind(legacy) == "run"
    check_output(legacy, kind="run", force=True)
    with pytest.raises(OutputError, match="lies inside the gpuseg run directory"):
        check_output(legacy / "x.parquet", kind="features", force=False)


# -- the Python entry points that write apply the same rules --------------------------------------

def test_write_run_refuses_the_folder_its_result_was_read_from(world, tmp_path):
    data = _copy(world.data, tmp_path / "data")
    fake = fake_result()
    result = dataclasses.replace(fake, metrics=dataclasses.replace(
        fake.metrics, input=dataclasses.replace(fake.metrics.input, source=str(data))))
    before = folder_digest(data)
    with pytest.raises(OutputError, match="is the input the run's input"):
        write_run(result, data, force=True)
    with pytest.raises(OutputError, match="lies inside the input the run's input"):
        write_run(result, data / "run")
    assert folder_digest(data) == before


def test_synthetic_writers_refuse_another_runs_folder_and_foreign_folders(world, tmp_path):
    before = folder_digest(world.other_run)
    with pytest.raises(OutputError, match="out_dir .* lies inside the gpuseg run directory"):
        write_partitioned(300, world.other_run / "data", partitions=2)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="overwrite=True replaces only a data set folder"):
        write_partitioned(300, foreign, partitions=2, overwrite=True)
    assert folder_digest(world.other_run) == before
    assert (foreign / "notes.txt").read_text() == "mine"


def test_repartition_refuses_an_output_inside_its_input(world, tmp_path):
    from gpuseg.config import PipelineConfig
    from gpuseg.distributed.shuffle import repartition

    data = _copy(world.data, tmp_path / "data")
    before = folder_digest(data)
    with pytest.raises(OutputError, match="out .* lies inside the input data"):
        repartition(data, data / "parts", partitions=2, config=PipelineConfig(workers=1))
    assert folder_digest(data) == before
