"""The command line: help with examples, one-line user errors, and assign/compare end to end."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from _fake_result import demo_run

from gpuseg.cli import EXIT_OK, EXIT_USER_ERROR, build_parser, main

COMMANDS = ("synth", "download", "features", "run", "demo", "assign", "compare")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_ends_with_a_worked_example(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-2] == "examples:"
    assert lines[-1].strip().startswith(f"gpuseg {command}")


def test_top_level_help_lists_the_new_commands_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "assign", "compare"):
        assert f"\n    {command} " in out or f"\n  {command}" in out
        assert f"gpuseg {command}" in out


def _user_error(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert err.startswith("gpuseg: error: ") and err.count("\n") == 1, err
    return err


def test_assign_with_a_missing_data_folder_is_a_one_line_user_error(run, tmp_path, capsys):
    err = _user_error(["assign", "--model", str(run.run_dir), "--data", str(tmp_path / "nope"),
                       "--out", str(tmp_path / "out.parquet"), "--backend", "cpu"], capsys)
    assert "nope" in err and "does not exist" in err
    assert not (tmp_path / "out.parquet").exists()


def test_assign_with_a_missing_model_is_a_one_line_user_error(run, tmp_path, capsys):
    err = _user_error(["assign", "--model", str(tmp_path / "no-run"), "--data", str(run.data_dir),
                       "--out", str(tmp_path / "out.parquet"), "--backend", "cpu"], capsys)
    assert "no-run" in err


def test_run_into_an_existing_directory_is_refused_before_any_work(run, tmp_path, capsys):
    existing = tmp_path / "run"
    existing.mkdir()
    err = _user_error(["run", "--data", str(tmp_path / "not-even-data"), "--out", str(existing)], capsys)
    assert "already exists; pass --force" in err


def test_demo_into_an_existing_directory_is_refused_before_generating_data(tmp_path, capsys):
    (tmp_path / "demo").mkdir()
    _user_error(["demo", "--out", str(tmp_path / "demo"), "--users", "500"], capsys)
    assert not (tmp_path / "demo-data").exists()


def test_demo_refuses_an_existing_data_folder_too(tmp_path, capsys):
    (tmp_path / "demo-data").mkdir()
    err = _user_error(["demo", "--out", str(tmp_path / "demo"), "--users", "500"], capsys)
    assert "demo-data already exists" in err
    assert not (tmp_path / "demo").exists()


def test_demo_with_too_few_users_is_refused_before_writing_anything(tmp_path, capsys):
    err = _user_error(["demo", "--out", str(tmp_path / "demo"), "--users", "5"], capsys)
    assert "--users must be at least" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "demo"])
def test_run_and_demo_prepare_the_backend_before_their_slow_steps(command, tmp_path):
    """A first run's background compile of the map's kernels starts before the pipeline is
    imported and, in the demo, before the synthetic data is made (each takes seconds)."""
    import subprocess
    import sys

    argv = (["run", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
            if command == "run" else ["demo", "--out", str(tmp_path / "demo"), "--users", "500"])
    script = ("import sys\n"
              "from cpu_fallback.backend import CpuBackend\n"
              "def prepare(self, *, embed):\n"
              "    print(embed, 'gpuseg.pipeline' in sys.modules)\n"
              "    raise SystemExit(0)\n"
              "CpuBackend.prepare = prepare\n"
              "from gpuseg.cli import main\n"
              f"main({[*argv, '--backend', 'cpu']!r})\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True False"
    assert list(tmp_path.iterdir()) == []  # nor has the demo made its data


def test_compare_with_a_missing_run_is_a_one_line_user_error(run, tmp_path, capsys):
    err = _user_error(["compare", str(run.run_dir), str(tmp_path / "other")], capsys)
    assert "other is not a gpuseg run directory" in err


def test_unknown_backend_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["assign", "--model", "m", "--data", "d", "--out", "o.parquet", "--backend", "tpu"])
    assert exited.value.code == EXIT_USER_ERROR
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_assign_writes_the_run_segments_for_the_training_users(run, tmp_path, capsys, caplog):
    out = tmp_path / "nested" / "assigned.parquet"
    with caplog.at_level(logging.INFO, logger="gpuseg"):
        code = main(["assign", "--model", str(run.run_dir), "--data", str(run.data_dir),
                     "--out", str(out), "--backend", "cpu", "-v"])
    assert code == EXIT_OK
    assigned = pd.read_parquet(out)
    trained = pd.read_parquet(run.run_dir / "segments.parquet")
    columns = ["user_id", "segment", "persona", "membership", "second_segment",
               "second_membership"]
    assert list(assigned.columns) == columns + ["provisional", "excluded"]
    # Every input user: the run's, and those the run left out, with the reason.
    segmented = assigned[assigned["excluded"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(segmented[columns].astype(trained[columns].dtypes),
                                  trained[columns], check_exact=False, rtol=0, atol=1e-6)
    left_out = assigned[assigned["excluded"].notna()]
    assert left_out["excluded"].str.contains("orders with products|order with products").all()
    stdout = capsys.readouterr().out
    assert f"assigned {len(trained):,} users; left out {len(left_out):,}" in stdout
    assert str(out) in stdout
    stages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage ")]
    assert [s.split(":")[0] for s in stages] == ["stage load", "stage features", "stage assign"]
    assert not list(out.parent.glob(".*partial"))


def test_compare_prints_the_matrix_and_writes_it_as_csv(run, tmp_path, capsys):
    out = tmp_path / "migration.csv"
    assert main(["compare", str(run.run_dir), str(run.run_dir), "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "ARI: 1.000" in printed and "appeared in B: 0" in printed and "left after A: 0" in printed
    segments = pd.read_parquet(run.run_dir / "segments.parquet")
    personas = segments.drop_duplicates("segment").sort_values("segment")["persona"]
    for persona in personas:
        assert persona in printed
    table = pd.read_csv(out)
    k = len(personas)
    assert len(table) == k * k
    diagonal = table[table["from_segment"] == table["to_segment"]].sort_values("from_segment")
    np.testing.assert_array_equal(diagonal["users"], np.bincount(segments["segment"]))
    assert list(diagonal["from_persona"]) == list(personas)


def test_every_subcommand_accepts_quiet_and_verbose_after_its_name():
    parser = build_parser()
    for command, extra in (("demo", []), ("compare", ["a", "b"]),
                           ("assign", ["--model", "m", "--data", "d", "--out", "o"])):
        args = parser.parse_args([command, *extra, "-q", "-v"])
        assert args.quiet and args.verbose == 1


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("all", None), ("3000", 3000)])
def test_run_passes_the_umap_fit_sample_to_the_config(value, expected):
    from gpuseg.cli.options import config_from

    args = build_parser().parse_args(["run", "--data", "d", "--out", "o",
                                      "--umap-fit-sample", value])
    assert config_from(args).umap_fit_sample == expected
    assert config_from(build_parser().parse_args(["run", "--data", "d", "--out", "o"])
                   ).umap_fit_sample == "auto"


def test_a_bad_option_value_is_named_by_its_flag(capsys, tmp_path):
    err = _user_error(["run", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                       "--pca-variance", "2"], capsys)
    assert "--pca-variance must be a number in (0, 1] (got 2.0)" in err


def test_every_config_field_has_a_flag_with_the_config_default():
    import argparse
    import dataclasses

    from gpuseg import cli
    from gpuseg.cli.options import config_from
    from gpuseg.config import PipelineConfig, flag

    run = next(action for action in cli.build_parser()._actions
               if isinstance(action, argparse._SubParsersAction)).choices["run"]
    by_dest = {action.dest: action for action in run._actions}
    for spec in dataclasses.fields(PipelineConfig):
        assert flag(spec.name) in by_dest[spec.name].option_strings
        assert by_dest[spec.name].default == spec.default
    args = run.parse_args(["--data", "d", "--out", "o", "--k-range", "2", "6",
                           "--dbscan-sample", "all", "--k", "auto", "--dbscan-eps", "auto",
                           "--feature-cap", "none"])
    config = config_from(args)
    assert (config.k_business_range, config.dbscan_sample, config.k, config.dbscan_eps,
            config.feature_cap) == ((2, 6), None, "auto", None, None)
    assert config_from(run.parse_args(["--data", "d", "--out", "o", "--feature-cap",
                                       "2.5"])).feature_cap == 2.5
    assert by_dest["feature_cap"].help.endswith("(default: 3)")
    args = run.parse_args(["--data", "d", "--out", "o", "--density", "hdbscan",
                           "--certainty-refits", "4", "--certainty-sample", "5000"])
    config = config_from(args)
    assert (config.density, config.certainty_refits, config.certainty_sample) == ("hdbscan", 4,
                                                                                  5000)
    assert by_dest["density"].choices == ("dbscan", "hdbscan")


def test_library_warnings_reach_the_terminal_only_with_v(monkeypatch, capsys, tmp_path):
    import importlib
    import warnings

    from gpuseg.data.checks import DataCleaningWarning

    cli_main = importlib.import_module("gpuseg.cli.main")

    def command(args):
        warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)
        warnings.warn("12 rows dropped", DataCleaningWarning, stacklevel=1)
        return 0

    real = cli_main.build_parser
    monkeypatch.setattr(cli_main, "build_parser", lambda: _parser_running(real, command))
    for flags, library_shown in (([], False), (["-v"], True)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert main(["features", "--data", "d", "--out", str(tmp_path / "f.parquet"),
                         *flags]) == 0
        messages = [str(w.message) for w in seen]
        assert "12 rows dropped" in messages
        assert ("a library's deprecation" in messages) is library_shown


def _parser_running(build, command):
    """The parser ``build`` makes, with every command replaced by ``command``."""
    parser = build()
    parser.set_defaults(func=command)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=command)
    return parser
