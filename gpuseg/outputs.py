"""Where a command may write: the output-path rules every writer applies before any work.

Every command that writes (``synth``, ``partition``, ``features``, ``run``,
``demo``, ``assign``, ``compare``) and every Python function that writes
(:func:`~gpuseg.rundir.write_run`, :func:`~gpuseg.data.synth.write_instacart`,
:func:`~gpuseg.data.synth.write_partitioned`,
:func:`~gpuseg.distributed.shuffle.repartition`) calls :func:`check_output`
with its output, its inputs and the kind of output it writes. Paths are
compared once resolved (symlinks, ``..``, relative paths). The rules:

* an output may not be an input, lie inside one or hold one;
* an output may not lie inside another gpuseg output (a run directory or a
  data set folder), so no command writes over or beside another run's files;
* the folder the output goes into must be a folder this user can write in;
* an existing output is refused unless ``force``, and ``force`` replaces only
  an output gpuseg wrote of the same kind (or an empty folder), never an
  input or a foreign file or folder.

gpuseg recognises what it wrote by a mark: every folder it writes holds
:data:`MARK_FILE` (``{"kind": ..., "gpuseg_version": ...}``); its parquet
files carry the same JSON in their schema metadata under :data:`MARK_KEY`; a
comparison CSV is recognised by its header. A run directory written before
marks existed is recognised by its ``metrics.json`` beside ``model/model.json``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import option, setting
from .errors import OutputError
from .staging import atomic_directory, recover_interrupted, write_replacing

#: The mark of a folder gpuseg wrote.
MARK_FILE = ".gpuseg-output.json"
#: The parquet schema-metadata key of the same mark.
MARK_KEY = b"gpuseg"
#: Each kind of output, as messages describe it.
KINDS = {"run": "run directory", "dataset": "data set folder", "features": "features file",
         "assignments": "assignments file", "comparison": "comparison CSV"}
#: The comparison CSV's columns (:meth:`gpuseg.compare.Comparison.to_long`), its mark.
COMPARISON_COLUMNS = ("from_segment", "from_persona", "to_segment", "to_persona", "users",
                      "share_of_from")

Inputs = Mapping[str, "str | os.PathLike[str] | None"]


def check_output(out: str | os.PathLike[str], *, kind: str, force: bool,
                 inputs: Inputs | None = None, name: str = "out", force_name: str = "force",
                 label: str | None = None) -> None:
    """Refuse an output path that would lose data or cannot be written, before any work.

    What a killed earlier write of ``out`` left beside it is cleaned up first
    (:func:`gpuseg.staging.recover_interrupted`), so that a previous output it
    had moved aside counts as existing.

    Parameters
    ----------
    out : path
        The output: a folder for ``run`` and ``dataset``, a file otherwise.
    kind : {"run", "dataset", "features", "assignments", "comparison"}
        What is written there (:data:`KINDS`).
    force : bool
        Whether an existing output of the same kind may be replaced.
    inputs : mapping of str to path, optional
        What the command reads, by how messages name it (``--data``, ``RUN_A``);
        ``None`` values are skipped.
    name, force_name : str
        The output's and the force option's names (flags inside the CLI,
        argument names for Python callers: :func:`gpuseg.config.option`).
    label : str, optional
        How messages name the output instead of ``option(name)``.

    Raises
    ------
    OutputError
        One line naming the output's option and the rule it breaks.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    shown = f"{label or option(name)} {out}"
    target = _absolute(out)
    recover_interrupted(out)
    for input_name, path in (inputs or {}).items():
        if path is not None and not (isinstance(path, str) and path == "kaggle"):
            _check_apart(target, _absolute(path), shown, input_name, path)
    _check_parents(target, shown)
    if os.path.lexists(target):
        _check_replaceable(target, kind, force, shown, force_name)


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _check_apart(target: Path, source: Path, shown: str, input_name: str,
                 given: str | os.PathLike[str]) -> None:
    if target == source:
        raise OutputError(f"{shown} is the input {input_name}; write the output to another path "
                          "(gpuseg never writes over its inputs)")
    if source in target.parents:
        raise OutputError(f"{shown} lies inside the input {input_name} ({given}); write the "
                          "output outside it (gpuseg never writes into its inputs)")
    if target in source.parents:
        raise OutputError(f"{shown} holds the input {input_name} ({given}); write the output to "
                          "another path (replacing it would delete the input)")


def _check_parents(target: Path, shown: str) -> None:
    """The nearest existing folder above ``target`` is writable; no folder above is a gpuseg output."""
    existing = next(parent for parent in target.parents if os.path.lexists(parent))
    if not existing.is_dir():
        raise OutputError(f"{shown}: {existing} is a file, not a folder; choose an output "
                          "path in a folder")
    for parent in target.parents:
        found = folder_kind(parent)
        if found is not None:
            raise OutputError(f"{shown} lies inside the gpuseg {KINDS[found]} {parent}; write "
                              "the output outside it (gpuseg never writes into another output)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot write in {existing} (permission denied); choose a "
                          "folder you can write to")


def _check_replaceable(target: Path, kind: str, force: bool, shown: str, force_name: str) -> None:
    if not force:
        raise OutputError(f"{shown} already exists; pass {setting(force_name, True)} to replace it")
    found = output_kind(target)
    if found == kind:
        return
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return  # an empty folder holds nothing to lose
    if found is not None:
        what = f"a gpuseg {KINDS[found]}"
    else:
        what = f"a {'folder' if target.is_dir() else 'file'} gpuseg did not write"
    raise OutputError(
        f"{shown} is {what}, not a gpuseg {KINDS[kind]}; {setting(force_name, True)} replaces "
        f"only a {KINDS[kind]} gpuseg wrote: remove it yourself or choose another path")


def output_kind(path: Path) -> str | None:
    """The kind of gpuseg output ``path`` is, from its mark; ``None`` when it has none."""
    if path.is_dir():
        return folder_kind(path)
    if not path.is_file():
        return None
    if path.name.endswith(".parquet"):
        return _parquet_kind(path)
    if path.name.endswith(".csv"):
        try:
            with open(path, encoding="utf-8", newline="") as stream:
                header = stream.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            return None
        return "comparison" if header == ",".join(COMPARISON_COLUMNS) else None
    return None


def folder_kind(folder: Path) -> str | None:
    """The kind of gpuseg output folder ``folder`` is (:data:`MARK_FILE`); ``None`` when unmarked."""
    mark = _read_mark_file(folder / MARK_FILE)
    if mark is not None:
        return mark
    # A run directory written before marks existed: its metrics beside its saved model.
    model = folder / "model" / "model.json"
    if (folder / "metrics.json").is_file() and model.is_file():
        try:
            meta = json.loads(model.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if isinstance(meta, dict) and "format_version" in meta and "gpuseg_version" in meta:
            return "run"
    return None


def _read_mark_file(path: Path) -> str | None:
    try:
        return _kind_of(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _kind_of(mark: Any) -> str | None:
    kind = mark.get("kind") if isinstance(mark, dict) else None
    return kind if kind in KINDS else None


def _parquet_kind(path: Path) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    try:
        return _kind_of(json.loads(metadata.get(MARK_KEY, b"")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def mark(kind: str) -> dict[str, str]:
    """The mark of an output of ``kind``, as JSON-ready values."""
    from . import __version__

    return {"kind": kind, "gpuseg_version": __version__}


@contextmanager
def output_folder(out: str | os.PathLike[str], *, kind: str, force: bool,
                  inputs: Inputs | None = None, name: str = "out",
                  force_name: str = "force") -> Iterator[Path]:
    """Check ``out`` (:func:`check_output`), then yield a staging folder that becomes it, marked.

    The folder is built beside ``out`` and renamed into place when the block
    succeeds (:func:`gpuseg.staging.atomic_directory`), with :data:`MARK_FILE`.
    """
    check_output(out, kind=kind, force=force, inputs=inputs, name=name, force_name=force_name)
    with atomic_directory(out) as staging:
        yield staging
        (staging / MARK_FILE).write_text(json.dumps(mark(kind)) + "\n", encoding="utf-8")


def write_output_file(out: str | os.PathLike[str], write: Callable[[Path], object], *, kind: str,
                      force: bool, inputs: Inputs | None = None, name: str = "out") -> Path:
    """Check ``out``, then write it through ``write(path)`` beside itself and rename it into place.

    A parquet ``kind`` is marked by the writer (:func:`write_parquet`); a
    comparison CSV by its header.
    """
    check_output(out, kind=kind, force=force, inputs=inputs, name=name)
    write_replacing(out, write)
    return Path(out)


def write_parquet(frame: Any, out: str | os.PathLike[str], *, kind: str, force: bool,
                  inputs: Inputs | None = None, index: bool | None = None) -> Path:
    """Write a pandas frame as a parquet file marked as a gpuseg output of ``kind``.

    ``index`` is pyarrow's ``preserve_index`` (``None``: kept as a column
    unless it is a plain range, as :meth:`pandas.DataFrame.to_parquet` does).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=index)
    metadata = {**(table.schema.metadata or {}), MARK_KEY: json.dumps(mark(kind)).encode()}
    table = table.replace_schema_metadata(metadata)
    return write_output_file(out, lambda path: pq.write_table(table, path), kind=kind,
                             force=force, inputs=inputs)
