"""umap-learn's numba functions compiled once per installation, not once per process.

umap-learn decorates its kernels (fuzzy memberships, the layout optimiser)
with ``numba.njit`` without ``cache=True``, so every new process would compile
them again (5.7 s of one core for a fit's three kernels as umap-learn builds
them, 2.6 s built serial as below). :func:`umap_import_cache` imports
umap-learn with numba's decorators defaulting to ``cache=True`` and numba's
cache folder pointing into gpuseg's cache, in a subfolder named after the
versions of Python, numba, umap-learn and pynndescent. An upgrade of any of
them therefore starts a new, empty folder rather than reading machine code
compiled from other sources (numba itself also checks each source file's
size and modification time). pynndescent is imported first, untouched: its
own kernels already say ``cache=True`` where caching is possible.

umap-learn's kernels are also compiled serial (``parallel=False``). Its two
``parallel=True`` kernels a fit runs, ``smooth_knn_dist`` and
``compute_membership_strengths``, took 5.0 of the 5.7 s a cold compile of a
fit's kernels took on a 2-core machine; serial, the three kernels compile in
2.6 s, and the first run's map waits that much less for them. A fit runs them
on its sample only (0.2 s parallel, 0.3 s serial on 145,000 users), and a 1-thread
Dask worker gains nothing from threads. The map moves a little with it:
``smooth_knn_dist``'s parallel build rounds some users' bandwidths
differently (about one user in 80, by 1e-5 relative) from the same code
built serial.
"""
from __future__ import annotations

import functools
import logging
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Written into the cache folder once a warm-up has compiled every kernel a run uses.
WARM_MARK = ".warm"
#: Longest a run waits for a warm-up still compiling before it compiles itself.
WARM_UP_WAIT_S = 180.0

#: Distributions whose versions name the cache folder.
VERSIONED = ("numba", "umap-learn", "pynndescent")
#: How gpuseg builds umap-learn's kernels, also in the folder's name: numba's cache key holds
#: a function's bytecode and signature but not its options, so machine code built another way
#: (``parallel=True`` before "serial") must be in another folder to be left unread.
BUILD = "serial"


def cache_folder(root: Path) -> Path:
    """The folder under ``root`` for this Python, these library versions and :data:`BUILD`."""
    parts = [f"py{platform.python_version()}", BUILD]
    for dist in VERSIONED:
        try:
            parts.append(f"{dist}-{metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}-none")
    return root / "numba" / "_".join(parts)


def _serial_and_cached(decorator: Any) -> Any:
    @functools.wraps(decorator)
    def decorate(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", True)
        kwargs["parallel"] = False
        return decorator(*args, **kwargs)

    return decorate


@contextmanager
def decorated_into_cache() -> Iterator[bool]:
    """numba's cache folder is this installation's (:func:`cache_folder`) for the functions
    decorated in this block; yields whether it is (not where the folder cannot be created)."""
    import numba

    from gpuseg.data.cache import cache_root

    folder = cache_folder(cache_root())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("numba cache for umap-learn and the placement kernel disabled: %s", exc)
        yield False
        return
    config: Any = numba.config  # its settings are set at import, invisible to type checkers
    saved = config.CACHE_DIR
    # numba picks a function's cache folder when it decorates it.
    config.CACHE_DIR = str(folder)
    try:
        yield True
    finally:
        config.CACHE_DIR = saved


@contextmanager
def umap_import_cache() -> Iterator[None]:
    """Import umap-learn inside this block to cache its compiled kernels on disk, serial.

    A no-op when umap-learn is already imported (its functions are decorated
    by then) or when the cache folder cannot be created.
    """
    if "umap" in sys.modules:
        yield
        return
    import numba
    import pynndescent  # noqa: F401  (imported as it is, before the decorators change)

    with decorated_into_cache() as cached:
        if not cached:
            yield
            return
        saved = numba.njit, numba.jit
        numba.njit, numba.jit = _serial_and_cached(numba.njit), _serial_and_cached(numba.jit)
        try:
            yield
        finally:
            numba.njit, numba.jit = saved


def warm_folder() -> Path:
    """This installation's cache folder (see :func:`cache_folder`)."""
    from gpuseg.data.cache import cache_root

    return cache_folder(cache_root())


def is_warm() -> bool:
    """Whether a warm-up finished writing this installation's kernels."""
    return (warm_folder() / WARM_MARK).is_file()


def start_warm_up() -> subprocess.Popen[bytes] | None:
    """Compile umap-learn's kernels into the cache in a background process, unless they are.

    A first run on a machine would otherwise compile them (about 14 s of one
    core) when its map stage starts; compiled meanwhile on the other core,
    while features, scaling and clustering run, they are loaded from the cache
    when the map needs them. ``None`` when the cache is warm already.
    """
    if is_warm():
        return None
    try:
        return subprocess.Popen([sys.executable, "-m", "cpu_fallback.numba_warm"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError as exc:  # no process to spare: the map stage compiles as before
        log.info("no background compilation of umap-learn's kernels: %s", exc)
        return None


def wait_for(warm_up: subprocess.Popen[bytes] | None) -> None:
    """Wait for a warm-up this process started (bounded), so the map loads what it compiled."""
    if warm_up is None:
        return
    try:
        warm_up.wait(timeout=WARM_UP_WAIT_S)
    except subprocess.TimeoutExpired:
        log.info("umap-learn's kernels are still compiling after %.0f s; compiling here",
                 WARM_UP_WAIT_S)
