"""How the command line reads PipelineConfig: a flag per field, its kind, help and default.

The config (:mod:`gpuseg.config`) declares every field's kind, help and limits;
this module turns them into argparse flags and the parsed arguments back into
a :class:`~gpuseg.config.PipelineConfig`.
"""
from __future__ import annotations

import argparse
import dataclasses
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from ..config import SAMPLED, PipelineConfig, flag, help_text

#: Makes a sub-command's parser: name, help, examples, and the function that runs it.
CommandFactory = Callable[[str, str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


def examples_epilog(text: str) -> str:
    """A command's worked examples, as the end of its ``--help``."""
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
_cap_value = _number_or(float, {"none": None}, "a number or 'none'")


def add_partition_cluster_options(p: argparse.ArgumentParser) -> None:
    """Where ``gpuseg partition`` shuffles: the Dask fields of PipelineConfig."""
    # Unlike a run, a repartition always goes through Dask: unset means a local worker per core.
    add_config_option(p, "workers", shown="one local worker per core")
    add_config_option(p, "scheduler")
    add_config_option(p, "worker_memory")


def _byte_size(text: str) -> int:
    """A size such as ``8GB`` or ``512MiB`` (Dask's spelling), in bytes."""
    from dask.utils import parse_bytes

    try:
        return int(parse_bytes(text))
    except (ValueError, OverflowError):  # OverflowError: a size of inf or 1e999
        raise argparse.ArgumentTypeError(
            f"expected a size such as 8GB or 512MiB (got {text!r})") from None


def _shown(value: object) -> str:
    """A config default as a user would type it on the command line."""
    if value is None:
        return "all"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
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
    "cap": {"type": _cap_value, "metavar": "SD|none"},
    "count": {"type": int, "metavar": "N"},
    "address": {"metavar": "ADDRESS"},
    "bytes": {"type": _byte_size, "metavar": "SIZE"},
}


def _auto_means(name: str) -> str:
    """What ``auto`` means for sample field ``name`` (the config's policy)."""
    return f"auto: every user on a GPU in one process, else {SAMPLED[name]:,}"


def add_config_option(p: argparse.ArgumentParser, name: str, *,
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


def add_backend(p: argparse.ArgumentParser) -> None:
    add_config_option(p, "backend")


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """One flag per PipelineConfig field, in the order the fields are declared."""
    for spec in dataclasses.fields(PipelineConfig):
        add_config_option(p, spec.name)


def config_from(args: argparse.Namespace) -> PipelineConfig:
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(PipelineConfig)}
    given: dict[str, Any] = {name: tuple(value) if isinstance(value, list) else value
                             for name, value in values.items()}
    return PipelineConfig(**given)
