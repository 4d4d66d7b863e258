"""Writing outputs atomically: built beside the target, renamed into place at the end.

:func:`atomic_directory` stages a folder (a run directory, a data set) and
:func:`write_replacing` a single file; an error or an interrupt leaves the
target as it was. Both name what they stage ``.<name>.tmp-<pid>-<random>``
and what they move aside while replacing ``.<name>.old-<pid>-<random>``; what
a hard kill (SIGKILL, power loss) leaves under those names is cleaned up by
the next write of the same target (:func:`recover_interrupted`).

Whether a target may be written at all (not an input, not another run's file,
replaced only when gpuseg wrote it) is :mod:`gpuseg.outputs`' decision, taken
before these run.

Permissions follow the umask, as any file a program creates: the staging
folder is made with :func:`os.mkdir` (``0o777`` less the umask), not
:func:`tempfile.mkdtemp`, whose ``0o700`` would keep colleagues and Dask
workers running as another user out of every run and data set.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a new folder beside ``target`` that becomes ``target`` only on success.

    An existing ``target`` is replaced only once the new one is complete. On
    any error or interrupt the staging folder is removed and ``target`` is
    untouched. A hard kill can leave the staging folder or the previous target
    moved aside; the next call for the same target cleans both up
    (:func:`recover_interrupted`).
    """
    target = Path(target)
    recover_interrupted(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, _staging_prefix(target))
    os.mkdir(staging)
    retired = None
    try:
        yield staging
        if os.path.lexists(target):
            retired = _sibling(target, _retired_prefix(target))
            os.replace(target, retired)
        os.replace(staging, target)
    except BaseException:
        # An interrupt between the two renames must not lose the previous target.
        if retired is not None and os.path.lexists(retired):
            if os.path.lexists(target):
                _remove(retired)
            else:
                os.replace(retired, target)
        _remove(staging)
        raise
    if retired is not None:
        _remove(retired)


def write_replacing(out: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Write a file beside ``out`` and rename it into place: an interrupt leaves no partial file.

    ``write`` is called with the staging path. What a killed earlier write of
    ``out`` left is removed first.
    """
    out = Path(out)
    recover_interrupted(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _sibling(out, _staging_prefix(out))
    try:
        write(partial)
        os.replace(partial, out)
    except BaseException:
        _remove(partial)
        raise


def recover_interrupted(target: str | os.PathLike) -> None:
    """Clean up what a killed :func:`atomic_directory` or :func:`write_replacing` left.

    Siblings of ``target`` are touched only when the process named in them is
    dead: a staging folder or file is removed; a previous target moved aside
    is put back when ``target`` is missing (the kill came between the two
    renames) and removed otherwise. Process ids are those of this host: a
    folder shared by several hosts writing the same target at once is not
    supported.
    """
    target = Path(target)
    try:
        siblings = sorted(target.parent.iterdir())
    except OSError:
        return  # no such folder yet, or one this user cannot list: nothing of ours is there
    staging, retired = _staging_prefix(target), _retired_prefix(target)
    for sibling in siblings:
        prefix = next((p for p in (staging, retired) if sibling.name.startswith(p)), None)
        if prefix is None or _process_alive(sibling.name[len(prefix):].split("-", 1)[0]):
            continue
        if prefix == retired and not os.path.lexists(target):
            os.replace(sibling, target)
            log.warning("restored %s: an earlier write was killed after moving it aside", target)
        else:
            _remove(sibling)
            log.info("removed %s, left by a killed earlier write", sibling)


def _sibling(target: Path, prefix: str) -> Path:
    return target.with_name(f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _retired_prefix(target: Path) -> str:
    return f".{target.name}.old-"


def _remove(path: Path) -> None:
    """Remove a file, a link or a folder tree; one already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _process_alive(pid_text: str) -> bool:
    """Whether the process ``pid_text`` names may still run; unknown counts as alive."""
    if os.name != "posix" or not pid_text.isdigit():
        return True  # no pid in the name (an older gpuseg), or no signal-0 probe on this OS
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's live process (EPERM), or a number no pid can be
    return True
