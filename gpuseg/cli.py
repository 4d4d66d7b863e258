"""The ``gpuseg`` command line: thin wrappers over the Python API.

Exit codes: 0 success; 2 a user error (bad input, option, environment or a
resource limit), one line on stderr; 1 an unexpected error, with its
traceback; 130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM). An
interrupted or terminated command leaves no half-written output behind.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .config import BackendName, PipelineConfig, flag, help_text, options_as_flags
from .errors import GpusegError

if TYPE_CHECKING:
    from .backend import Backend

log = logging.getLogger("gpuseg")

EXIT_OK, EXIT_BUG, EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: Fewer synthetic shoppers leave too few after the min-orders filter for every stage to run.
DEMO_MIN_USERS = 500


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and one line (its default, kept explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _examples(text: str) -> str:
    return "examples:\n" + textwrap.indent(textwrap.dedent(text).strip(), "  ")


def _number_or(number: Callable[[str], object], words: Mapping[str, object],
               expected: str) -> Callable[[str], object]:
    """An argparse type: one of ``words`` (read as its value), else a ``number``."""
    def read(text: str) -> object:
        if text in words:
            return words[text]
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})") from None

    return read


_k_value = _number_or(int, {"auto": "auto"}, "'auto' or an integer")
_sample_value = _number_or(int, {"all": None, "auto": "auto"}, "an integer, 'all' or 'auto'")
_count_or_all = _number_or(int, {"all": None}, "an integer or 'all'")
_eps_value = _number_or(float, {"auto": None}, "a number or 'auto'")


def _add_partition_cluster_options(p: argparse.ArgumentParser) -> None:
    """Where ``gpuseg partition`` shuffles: the Dask fields of PipelineConfig."""
    # Unlike a run, a repartition always goes through Dask: unset means a local worker per core.
    _add_config_option(p, "workers", shown="one local worker per core")
    _add_config_option(p, "scheduler")
    _add_config_option(p, "worker_memory")


def _byte_size(text: str) -> int:
    """A size such as ``8GB`` or ``512MiB`` (Dask's spelling), in bytes."""
    from dask.utils import parse_bytes

    try:
        return int(parse_bytes(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 8GB or 512MiB (got {text!r})") from None


def _shown(value: object) -> str:
    """A config default as a user would type it on the command line."""
    if value is None:
        return "all"
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


#: How each kind of PipelineConfig field is read from the command line: argparse keywords, and
#: the word that stands for None where the kind allows it (shown as the default's spelling).
_KIND_ARGUMENTS: dict[str, dict[str, object]] = {
    "int": {"type": int},
    "float": {"type": float},
    "k": {"type": _k_value, "metavar": "K|auto"},
    "range": {"type": int, "nargs": 2, "metavar": ("LOW", "HIGH")},
    "sample": {"type": _sample_value, "metavar": "N|all|auto"},
    "optional_int": {"type": _count_or_all, "metavar": "N|all"},
    "eps": {"type": _eps_value, "metavar": "EPS|auto"},
    "count": {"type": int, "metavar": "N"},
    "address": {"metavar": "ADDRESS"},
    "bytes": {"type": _byte_size, "metavar": "SIZE"},
}


def _auto_means(name: str) -> str:
    """What ``auto`` means for sample field ``name`` on each backend (from the backends)."""
    from cpu_fallback.backend import CpuBackend

    from .rapids.backend import RapidsBackend  # the class only: importing it loads no GPU library

    def users(size: int | None) -> str:
        return "every user" if size is None else f"{size:,}"

    return (f"auto: GPU {users(RapidsBackend.sample_defaults[name])}, "
            f"CPU {users(CpuBackend.sample_defaults[name])}")


def _add_config_option(p: argparse.ArgumentParser, name: str, *,
                       shown: str | None = None) -> None:
    """Add the flag of PipelineConfig field ``name``: its kind, help and default from the config.

    ``shown`` replaces the default the help states, for a command that reads an
    unset option its own way.
    """
    spec = next(f for f in dataclasses.fields(PipelineConfig) if f.name == name)
    kind = spec.metadata["kind"]
    if shown is None and spec.default is None and kind in ("eps", "count", "bytes", "address"):
        shown = {"eps": "auto", "address": "none"}.get(kind) or spec.metadata["every"]
    elif shown is None:
        shown = _shown(spec.default)
    extra = f"; {_auto_means(name)}" if kind == "sample" else ""
    # A choice field lists its own values; every other kind reads the same way for each field.
    reading = ({"choices": spec.metadata["choices"]} if kind == "choice"
               else _KIND_ARGUMENTS[kind])
    p.add_argument(flag(name), dest=name, default=spec.default,
                   help=f"{help_text(name, as_flags=True)} (default: {shown}{extra})",
                   **reading)


def _add_backend(p: argparse.ArgumentParser) -> None:
    _add_config_option(p, "backend")


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """One flag per PipelineConfig field, in the order the fields are declared."""
    for spec in dataclasses.fields(PipelineConfig):
        _add_config_option(p, spec.name)


def _config(args: argparse.Namespace) -> PipelineConfig:
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(PipelineConfig)}
    given: dict[str, Any] = {name: tuple(value) if isinstance(value, list) else value
                             for name, value in values.items()}
    return PipelineConfig(**given)


# -- commands ----------------------------------------------------------------------------------


def _cmd_synth(args: argparse.Namespace) -> int:
    from .data.synth import generate_instacart, write_instacart, write_partitioned

    if args.partitions is not None:
        if args.format == "csv":
            raise GpusegError("--partitions writes parquet partitions; drop --format csv")
        out = write_partitioned(args.users, args.out, partitions=args.partitions, seed=args.seed,
                                separation=args.separation, overwrite=args.force)
        print(f"wrote {args.users:,} synthetic users ({args.separation} separation) to {out} "
              f"in {args.partitions:,} partitions")
        return EXIT_OK
    data = generate_instacart(args.users, seed=args.seed, separation=args.separation)
    out = write_instacart(data, args.out, fmt=args.format or "csv", overwrite=args.force)
    print(f"wrote {args.users:,} synthetic users ({args.separation} separation) to {out}")
    return EXIT_OK


def _cmd_partition(args: argparse.Namespace) -> int:
    from .distributed.shuffle import repartition

    # Without --workers or --scheduler, a local cluster of one worker per core.
    workers = args.workers if args.workers or args.scheduler else (os.cpu_count() or 1)
    config = PipelineConfig(backend="cpu", workers=workers, scheduler=args.scheduler,
                            worker_memory=args.worker_memory)
    out = repartition(args.data, args.out, partitions=args.partitions, config=config,
                      overwrite=args.force)
    print(f"wrote {args.data} to {out} in {args.partitions:,} partitions")
    return EXIT_OK


def _cmd_download(args: argparse.Namespace) -> int:
    from .data.kaggle import download_instacart

    path = download_instacart(competition=args.competition, force=args.force)
    print(path)
    return EXIT_OK


def _cmd_features(args: argparse.Namespace) -> int:
    from .data import load_instacart
    from .features import compute_features
    from .registry import get_backend
    from .resources import check_features
    from .timing import StageTimer

    backend = get_backend(args.backend)
    timer = StageTimer(backend)
    with timer.stage("load"):
        data = load_instacart(args.data, backend=backend)
    with timer.stage("features"):
        check_features(data, backend)
        table = backend.to_host(compute_features(data, backend, min_orders=args.min_orders).table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_replacing(out, table.to_parquet)
    print(f"wrote features of {len(table):,} users x {table.shape[1]} columns to {out}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import segment
    from .rundir import refuse_existing

    refuse_existing(args.out, force=args.force)
    config = _config(args)
    with _progress(args) as progress:
        result = segment(args.data, config, progress=progress)
        out = _write_run(result, args.out, force=args.force, progress=progress)
    _print_summary(result, out)
    return EXIT_OK


def demo_config(backend: Backend, seed: int) -> PipelineConfig:
    """The demo's pipeline: the defaults, with the backend's demo-sized UMAP fit.

    On two CPU cores a umap-learn layout fitted on tens of thousands of
    shoppers, plus its numba compilation, would take most of the two-minute
    budget; the CPU backend's ``demo_umap`` fit (2,500 users, below the 4,096
    where umap-learn compiles NN-descent) shapes the layout and every other
    shopper is placed with the fitted model's transform, so the map still
    shows everyone and the report says how it was made. The GPU fits
    everyone. A function of its own so that tests can run the whole demo
    with lighter settings.
    """
    return PipelineConfig(backend=cast(BackendName, backend.name), seed=seed,
                          umap_fit_sample=backend.demo_umap_fit_sample)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .data.synth import generate_instacart, write_instacart
    from .pipeline import segment
    from .registry import get_backend
    from .rundir import refuse_existing

    if args.users < DEMO_MIN_USERS:
        raise GpusegError(f"--users must be at least {DEMO_MIN_USERS:,} for the demo "
                          f"(got {args.users})")
    out = Path(args.out)
    data_dir = out.with_name(f"{out.name}-data")
    refuse_existing(out, force=args.force)
    refuse_existing(data_dir, force=args.force)
    with _progress(args) as progress:
        _tell(progress, "synthetic data")
        with _timed("synthetic data"):
            data = generate_instacart(args.users, seed=args.seed, separation="strong")
            write_instacart(data, data_dir, fmt="parquet", overwrite=args.force)
        backend = get_backend(args.backend)
        result = segment(data_dir, demo_config(backend, args.seed), backend=backend,
                         progress=progress)
        out = _write_run(result, out, force=args.force, progress=progress)
    _print_summary(result, out)
    print(f"synthetic data: {data_dir}")
    print(f"report: {out / 'report.html'}")
    return EXIT_OK


def _cmd_assign(args: argparse.Namespace) -> int:
    from .assign import assign_users
    from .registry import get_backend

    backend = get_backend(args.backend)
    with _progress(args) as progress:
        assigned = assign_users(args.model, args.data, backend, progress=progress)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_replacing(out, lambda path: assigned.to_parquet(path, index=False))
    print(f"assigned {len(assigned):,} users to the segments of {args.model}; wrote {out}")
    for (segment, persona), size in assigned.groupby(["segment", "persona"]).size().items():
        print(f"  {segment}: {persona:<37} {size:>9,}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    comparison = compare_runs(args.run_a, args.run_b)
    print(comparison.summary())
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_replacing(out, lambda path: comparison.to_long().to_csv(path, index=False))
        print(f"wrote {out}")
    return EXIT_OK


def _write_replacing(out: Path, write: Callable[[Path], object]) -> None:
    """Write a file beside ``out`` and rename it into place: an interrupt leaves no partial file."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        write(partial)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write_run(result: Any, out: str | Path, *, force: bool, progress: Callable[[str], None] | None) -> Path:
    from .rundir import write_run

    _tell(progress, "writing run directory and report")
    with _timed("write run directory"):
        return write_run(result, out, force=force)


def _tell(progress: Callable[[str], None] | None, stage: str) -> None:
    if progress is not None:
        progress(stage)


@contextmanager
def _timed(what: str) -> Iterator[None]:
    """Log the wall time of a step outside the pipeline's own stage timer (shown with -v)."""
    start = time.perf_counter()
    yield
    log.info("stage %s: %.2f s", what, time.perf_counter() - start)


def _print_summary(result, out: Path) -> None:
    m = result.metrics
    print(f"{m['users']['segmented']:,} users -> {result.k} segments on {result.device} "
          f"(silhouette {m['silhouette']['overall']:.3f}; {m['verdict']['strength']} structure)")
    for persona, size in zip(result.model.persona_names, m["kmeans"]["sizes"]):
        print(f"  {persona:<40} {size:>9,}")
    print(f"run directory: {out} (open {out / 'report.html'})")


class _progress:
    """Stage progress on stderr when it is a terminal; silent otherwise or with --quiet."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.enabled = not args.quiet and sys.stderr.isatty()
        self._status: Any = None

    def __enter__(self) -> Callable[[str], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console

        self._status = Console(stderr=True).status("starting")
        self._status.start()
        return lambda stage: self._status.update(f"gpuseg: {stage.replace('_', ' ')}")

    def __exit__(self, *exc_info) -> None:
        if self._status is not None:
            self._status.stop()


# -- parser ------------------------------------------------------------------------------------


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="log stage timings (-vv: debug, and tracebacks for user errors)")
    p.add_argument("-q", "--quiet", action="store_true",
                   default=False if default == 0 else argparse.SUPPRESS,
                   help="no progress output")


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Which backend "auto" chose, and why, is worth one line even without -v.
    from .registry import log as registry_log

    registry_log.setLevel(logging.WARNING if quiet else min(level, logging.INFO))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gpuseg",
        description="GPU-accelerated shopper segmentation for grocery e-commerce "
                    "(Instacart layout; RAPIDS on a GPU, scikit-learn on the CPU).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples("""
            gpuseg demo                                   # synthetic data -> report, best backend
            gpuseg synth --users 20000 --out data/synth
            gpuseg run --data data/synth --out runs/first --k auto
            gpuseg synth --users 2000000 --partitions 40 --out data/big
            gpuseg run --data data/big --out runs/big --workers 2   # across Dask workers
            gpuseg features --data data/synth --out features.parquet --backend cpu
            gpuseg assign --model runs/first --data data/next-month --out next-month.parquet
            gpuseg compare runs/first runs/second --out migration.csv
        """) + "\n\nexit codes: 0 ok, 1 unexpected error (traceback), 2 user error (one line), "
               "130 interrupted, 143 terminated",
    )
    _add_verbosity(parser, default=0)
    # The same flags after the command name; SUPPRESS keeps a sub-command from resetting them.
    common = _Parser(add_help=False)
    _add_verbosity(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_: str, examples: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=_examples(examples),
                           parents=[common],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = command("synth", "write a synthetic Instacart-layout data set with planted personas",
                "gpuseg synth --users 50000 --seed 7 --out data/synth --separation realistic",
                _cmd_synth)
    p.add_argument("--users", type=int, default=50_000, help="number of shoppers (default: 50000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument("--out", required=True, help="folder to write (Kaggle layout + personas_truth.csv)")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="file format (default: csv; parquet with --partitions)")
    p.add_argument("--separation", choices=("strong", "realistic"), default="strong",
                   help="strong: personas recoverable; realistic: overlapping like real shoppers "
                        "(default: strong)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.add_argument("--partitions", type=int, default=None, metavar="P",
                   help="write the partitioned layout (P parquet partitions of whole users) "
                        "block by block, out of core; the same rows as without it")

    p = command("partition", "rewrite a data set as partitions of whole users, for runs across "
                             "Dask workers",
                "gpuseg partition --data data/instacart --out data/instacart-parts "
                "--partitions 64 --workers 2",
                _cmd_partition)
    p.add_argument("--data", required=True, help="any accepted input folder (CSV, parquet, ...)")
    p.add_argument("--out", required=True, help="folder to write (the partitioned layout)")
    p.add_argument("--partitions", type=int, required=True, metavar="P",
                   help="number of partitions (users are bucketed by user_id)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    _add_partition_cluster_options(p)

    p = command("download", "download the Instacart data set from Kaggle (needs Kaggle credentials)",
                "gpuseg download && gpuseg run --data kaggle --out runs/instacart",
                _cmd_download)
    p.add_argument("--competition", action="store_true",
                   help="fetch the competition files (rules must be accepted on Kaggle) instead of "
                        "the public dataset")
    p.add_argument("--force", action="store_true", help="download again even if cached")

    p = command("features", "compute the per-user feature table",
                "gpuseg features --data data/synth --out features.parquet --min-orders 5",
                _cmd_features)
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True, help="parquet file to write (index user_id)")
    _add_config_option(p, "min_orders")
    _add_backend(p)

    p = command("run", "segment shoppers and write a run directory",
                "gpuseg run --data data/synth --out runs/2026-11 --k auto --backend cpu",
                _cmd_run)
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    _add_pipeline_options(p)

    p = command("demo", "generate synthetic shoppers, segment them and write the report "
                        "(the data goes to RUN_DIR-data)",
                "gpuseg demo --out gpuseg-demo --users 50000   # then open gpuseg-demo/report.html",
                _cmd_demo)
    p.add_argument("--out", default="gpuseg-demo", metavar="RUN_DIR",
                   help="run directory to create; the synthetic data is written beside it as "
                        "RUN_DIR-data (default: gpuseg-demo)")
    p.add_argument("--users", type=int, default=50_000,
                   help=f"synthetic shoppers, at least {DEMO_MIN_USERS} (default: 50000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the run (default: 0)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing run directory and data folder")
    _add_backend(p)

    p = command("assign", "segment new users with a saved model (no refit)",
                "gpuseg assign --model runs/2026-11 --data data/december --out december.parquet",
                _cmd_assign)
    p.add_argument("--model", required=True,
                   help="run directory (or its model/ folder) of the run whose segments to use")
    p.add_argument("--data", required=True, help="Instacart-layout folder, or 'kaggle'")
    p.add_argument("--out", required=True,
                   help="parquet file to write: user_id, segment, persona (replaced if present)")
    _add_backend(p)

    p = command("compare", "segment migration between two runs: matrix, ARI, users who came and went",
                "gpuseg compare runs/2026-10 runs/2026-11 --out migration.csv",
                _cmd_compare)
    p.add_argument("run_a", metavar="RUN_A", help="earlier run directory")
    p.add_argument("run_b", metavar="RUN_B", help="later run directory")
    p.add_argument("--out", help="CSV to write, one row per (A segment, B segment): users and share")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so cleanup runs as for Ctrl-C.

    A KeyboardInterrupt subclass: no ``except Exception`` swallows it, and every
    ``except BaseException`` cleanup (staging folders, partial files) runs.
    """


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpuseg`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        with _sigterm_raises(), options_as_flags():
            return args.func(args)
    except GpusegError as exc:
        if args.verbose >= 2:
            log.exception("user error")
        print(f"gpuseg: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Terminated:
        print("gpuseg: terminated (SIGTERM); nothing half-written was left behind", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("gpuseg: interrupted; nothing half-written was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
