"""The ``gpuseg`` command line: the parser, exit codes and error handling of every command.

Exit codes: 0 success; 2 a user error (bad input, option, environment or a
resource limit), one line on stderr; 1 an unexpected error, with its
traceback; 130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM). An
interrupted or terminated command leaves no half-written output behind.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..config import options_as_flags
from ..errors import GpusegError
from . import data_commands, model_commands, run_commands, serve_command
from .exit_codes import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR
from .options import examples_epilog

log = logging.getLogger("gpuseg")


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and one line (its default, kept explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


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
    from ..registry import log as registry_log

    registry_log.setLevel(logging.WARNING if quiet else min(level, logging.INFO))


#: Loggers of Dask and the libraries under it, and the level each -v count lets through:
#: none of their lines without -v (a user error is gpuseg's one line), warnings with -v.
_DASK_LOGGERS = ("distributed", "dask", "tornado", "bokeh")
_DASK_LEVELS = (logging.CRITICAL + 1, logging.WARNING, logging.INFO)
#: Read by the Dask worker processes gpuseg starts, when they import distributed.
_DASK_LOGGING_ENV = "DASK_LOGGING__DISTRIBUTED"


class _DaskLines(logging.Filter):
    """Drops records of Dask's loggers below a level, whatever level Dask set on them."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] not in _DASK_LOGGERS or record.levelno >= self.level


@contextmanager
def _dask_logging(verbose: int) -> Iterator[None]:
    """Keep Dask's own logging off unless ``-v``, here and in the worker processes started here.

    distributed configures its loggers when imported (INFO, its own handler
    where none exists), which may happen at any point of a command: this
    process's handlers filter its records instead, and the environment tells
    worker processes, which import it afresh.
    """
    level = _DASK_LEVELS[min(verbose, 2)]
    quiet = _DaskLines(level)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    previous = os.environ.get(_DASK_LOGGING_ENV)
    os.environ[_DASK_LOGGING_ENV] = logging.getLevelName(min(level, logging.CRITICAL)).lower()
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
        if previous is None:
            os.environ.pop(_DASK_LOGGING_ENV, None)
        else:
            os.environ[_DASK_LOGGING_ENV] = previous


@contextmanager
def _library_warnings(verbose: int) -> Iterator[None]:
    """Without ``-v``, only gpuseg's own warnings (rows dropped while cleaning, an unusable
    cache) reach the terminal: the libraries' warnings are shown with ``-v``.

    The worker processes gpuseg starts read the same choice from ``PYTHONWARNINGS``.
    """
    from ..data.cache import CacheWarning
    from ..data.checks import DataCleaningWarning

    previous = os.environ.get("PYTHONWARNINGS")
    with warnings.catch_warnings():
        if verbose == 0:
            warnings.simplefilter("ignore")
            for category in (DataCleaningWarning, CacheWarning):
                warnings.simplefilter("default", category)
            os.environ["PYTHONWARNINGS"] = "ignore"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PYTHONWARNINGS", None)
            else:
                os.environ["PYTHONWARNINGS"] = previous


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gpuseg",
        description="GPU-accelerated shopper segmentation for grocery e-commerce "
                    "(Instacart layout; RAPIDS on a GPU, scikit-learn on the CPU).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=examples_epilog("""
            gpuseg demo                                   # synthetic data -> report, best backend
            gpuseg synth --users 20000 --out data/synth
            gpuseg run --data data/synth --out runs/first --k auto
            gpuseg synth --users 2000000 --partitions 40 --out data/big
            gpuseg run --data data/big --out runs/big --workers 2   # across Dask workers
            gpuseg features --data data/synth --out features.parquet --backend cpu
            gpuseg assign --model runs/first --data data/next-month --out next-month.parquet
            gpuseg compare runs/first runs/second --out migration.csv
            gpuseg serve --model runs/first --port 8000     # HTTP API: POST /v1/assign
        """) + "\n\nexit codes: 0 ok, 1 unexpected error (traceback), 2 user error (one line), "
               "130 interrupted, 143 terminated",
    )
    _add_verbosity(parser, default=0)
    # The same flags after the command name; SUPPRESS keeps a sub-command from resetting them.
    common = Parser(add_help=False)
    _add_verbosity(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_: str, examples: str, func: Callable[[argparse.Namespace], int]
                ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=examples_epilog(examples),
                           parents=[common],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    for module in (data_commands, run_commands, model_commands, serve_command):
        module.register(command)
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
        with _sigterm_raises(), options_as_flags(), _dask_logging(args.verbose), \
                _library_warnings(args.verbose):
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
