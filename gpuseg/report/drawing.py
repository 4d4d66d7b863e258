"""Drawing the report's figures on two cores: the page's slowest step after the stages.

matplotlib draws one figure at a time under the GIL, about 0.3 s each for the
report's text-heavy figures (3.5 s of a 600-user run). :func:`draw_all`
starts one helper process (``python -m gpuseg.report.drawing FOLDER``) and
draws figures itself meanwhile: the helper takes them from the front of the
list, this process from the back, each claiming a figure by creating its
claim file, so that neither waits while the other still has figures to draw,
and this process draws while the helper starts (about a second to import
matplotlib). Each figure is a picklable call of a :mod:`gpuseg.report.figures`
function on host data, so the helper draws exactly what this process would:
the same PNG bytes. A helper that cannot start, or dies, leaves its figures
to this process.

The helper is a plain subprocess, not a :mod:`multiprocessing` one, whose
spawned children import the caller's main script again: a user's script
calling :func:`gpuseg.write_run` would be run a second time.
"""
from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from matplotlib.figure import Figure

from . import figures

log = logging.getLogger(__name__)

#: Below this many figures the helper's start-up costs more than it saves.
HELPED_FROM = 4
#: Longest the helper may take for its share of the figures before this process draws them.
HELPER_WAIT_S = 300.0
_JOBS = "jobs.pickle"


def png(draw: Callable[[], Figure]) -> bytes:
    """The PNG bytes of one drawn figure."""
    return figures.to_png(draw())


def draw_all(jobs: Mapping[str, Callable[[], Figure]], *,
             helper: bool | None = None) -> dict[str, bytes]:
    """Each figure's PNG bytes, by name (in the order of ``jobs``).

    Parameters
    ----------
    jobs : mapping of str to callable
        Name -> a picklable call returning a figure (e.g. a
        :func:`functools.partial` of a :mod:`gpuseg.report.figures` function).
    helper : bool, optional
        Draw with a helper process; by default when there is a second core
        and at least :data:`HELPED_FROM` figures.
    """
    names = list(jobs)
    if helper is None:
        helper = (os.cpu_count() or 1) > 1 and len(names) >= HELPED_FROM
    if not helper:
        return {name: png(jobs[name]) for name in names}
    with tempfile.TemporaryDirectory(prefix="gpuseg-figures-") as tmp:
        folder = Path(tmp)
        (folder / _JOBS).write_bytes(pickle.dumps([jobs[name] for name in names]))
        process = _start_helper(folder)
        drawn: dict[int, bytes] = {}
        for index in reversed(range(len(names))):
            if process is not None and not _claim(folder, index):
                break  # the helper has it, and every figure before it
            drawn[index] = png(jobs[names[index]])
        if process is not None:
            _finish(process, waited_for=len(drawn) < len(names))
        helped = 0
        for index, name in enumerate(names):
            if index in drawn:
                continue
            path = _png_path(folder, index)
            if path.is_file():
                drawn[index] = path.read_bytes()
                helped += 1
            else:  # claimed by a helper that died before writing it
                drawn[index] = png(jobs[name])
        log.debug("the helper process drew %d of %d figures", helped, len(names))
    return {name: drawn[index] for index, name in enumerate(names)}


def _start_helper(folder: Path) -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen([sys.executable, "-m", __name__, str(folder)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:  # no process to spare: every figure is drawn here
        log.info("drawing the report's figures in this process: %s", exc)
        return None


def _finish(process: subprocess.Popen[bytes], *, waited_for: bool) -> None:
    """Wait for the helper's figures, or stop a helper that has none (e.g. still starting)."""
    if not waited_for:
        process.kill()
        process.communicate()
        return
    try:
        _, errors = process.communicate(timeout=HELPER_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _, errors = process.communicate()
    if process.returncode:
        log.info("the figure helper ended with %s; its figures are drawn here: %s",
                 process.returncode, errors.decode(errors="replace").strip()[-500:])


def _claim(folder: Path, index: int) -> bool:
    """Whether this process is the first to claim figure ``index`` (atomic: O_EXCL)."""
    try:
        os.close(os.open(folder / f"{index}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _png_path(folder: Path, index: int) -> Path:
    return folder / f"{index}.png"


def _help(folder: Path) -> None:
    """The helper: draw unclaimed figures from the front until one is claimed already."""
    jobs = pickle.loads((folder / _JOBS).read_bytes())
    for index, draw in enumerate(jobs):
        if not _claim(folder, index):
            return
        partial_path = folder / f"{index}.part"
        partial_path.write_bytes(png(draw))
        partial_path.replace(_png_path(folder, index))


if __name__ == "__main__":
    _help(Path(sys.argv[1]))
