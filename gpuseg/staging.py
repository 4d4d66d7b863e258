"""Writing outputs atomically: built beside the target, renamed into place at the end.

:func:`atomic_directory` stages a folder (a run directory, a data set) and
:func:`write_replacing` a single file; an error or an interrupt leaves the
target as it was. What a hard kill leaves behind is cleaned up by the next
write of the same target (:func:`recover_interrupted`).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import setting
from .errors import GpusegError

log = logging.getLogger(__name__)


@contextmanager
def atomic_directory(target: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` that becomes ``target`` only on success.

    An existing ``target`` is refused unless ``force``; then it is replaced only
    once the new one is complete. On any error or interrupt the temporary
    folder is removed and ``target`` is untouched. A hard kill (SIGKILL, power
    loss) can leave the temporary folder, ``.<name>.tmp-<pid>-*``, or the
    previous run moved aside, ``.<name>.old-<pid>-*``; the next call for the
    same target cleans both up (:func:`recover_interrupted`).
    """
    target = Path(target)
    refuse_existing(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-",
                                    dir=target.parent))
    retired = None
    try:
        yield staging
        if target.exists():
            retired = target.with_name(f"{_retired_prefix(target)}{os.getpid()}-"
                                       f"{uuid.uuid4().hex[:8]}")
            os.replace(target, retired)
        os.replace(staging, target)
    except BaseException:
        # An interrupt between the two renames must not lose the previous run.
        if retired is not None and retired.exists():
            if target.exists():
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(retired, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def refuse_existing(target: str | os.PathLike, *, force: bool) -> None:
    """Raise :class:`GpusegError` if ``target`` exists and ``force`` is false.

    Commands call this before their long work, so that a run is not computed
    only to be refused. What a killed earlier write left is recovered first, so
    a previous run it had moved aside counts as existing.
    """
    recover_interrupted(target)
    if Path(target).exists() and not force:
        raise GpusegError(f"{target} already exists; pass {setting('force', True)} to replace it")


def recover_interrupted(target: str | os.PathLike) -> None:
    """Clean up what a killed :func:`atomic_directory` left beside ``target``.

    Siblings are touched only when the process named in them is dead: a
    staging folder is removed; a previous run moved aside is put back when
    ``target`` is missing (the kill came between the two renames) and removed
    otherwise. Process ids are those of this host: a folder shared by several
    hosts writing the same target at once is not supported.
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
        if prefix == retired and not target.exists():
            os.replace(sibling, target)
            log.warning("restored %s: an earlier write was killed after moving it aside", target)
        else:
            shutil.rmtree(sibling, ignore_errors=True)
            log.info("removed %s, left by a killed earlier write", sibling)


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _retired_prefix(target: Path) -> str:
    return f".{target.name}.old-"


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



def write_replacing(out: Path, write: Callable[[Path], object]) -> None:
    """Write a file beside ``out`` and rename it into place: an interrupt leaves no partial file."""
    partial = out.with_name(f".{out.name}.partial")
    try:
        write(partial)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
