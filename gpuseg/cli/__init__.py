"""The ``gpuseg`` command line: thin wrappers over the Python API.

:mod:`~gpuseg.cli.main` builds the parser and maps errors to exit codes; each
command lives with its flags in :mod:`~gpuseg.cli.data_commands` (synth,
partition, download, features), :mod:`~gpuseg.cli.run_commands` (run, demo) or
:mod:`~gpuseg.cli.model_commands` (assign, compare) or
:mod:`~gpuseg.cli.serve_command` (serve); :mod:`~gpuseg.cli.options`
turns :class:`~gpuseg.config.PipelineConfig` fields into flags and
:mod:`~gpuseg.cli.output` prints and writes.
"""
from __future__ import annotations

from .exit_codes import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USER_ERROR
from .main import Terminated, build_parser, main
from .run_commands import DEMO_MIN_USERS, demo_config

__all__ = ["DEMO_MIN_USERS", "EXIT_BUG", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED",
           "EXIT_USER_ERROR", "Terminated", "build_parser", "demo_config", "main"]
