"""umap-learn's numba functions compiled once per installation, not once per process.

umap-learn decorates its kernels (fuzzy memberships, the layout optimiser)
with ``numba.njit`` without ``cache=True``, so every new process compiles
them again: about 10 s of every CPU run. :func:`umap_import_cache` imports
umap-learn with numba's decorators defaulting to ``cache=True`` and numba's
cache folder pointing into gpuseg's cache, in a subfolder named after the
versions of Python, numba, umap-learn and pynndescent. An upgrade of any of
them therefore starts a new, empty folder rather than reading machine code
compiled from other sources (numba itself also checks each source file's
size and modification time). pynndescent is imported first, untouched: its
own kernels already say ``cache=True`` where caching is possible.
"""
from __future__ import annotations

import functools
import logging
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Distributions whose versions name the cache folder.
VERSIONED = ("numba", "umap-learn", "pynndescent")


def cache_folder(root: Path) -> Path:
    """The folder under ``root`` for this Python and these library versions."""
    parts = [f"py{platform.python_version()}"]
    for dist in VERSIONED:
        try:
            parts.append(f"{dist}-{metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}-none")
    return root / "numba" / "_".join(parts)


def _defaulting_to_cache(decorator: Any) -> Any:
    @functools.wraps(decorator)
    def decorate(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", True)
        return decorator(*args, **kwargs)

    return decorate


@contextmanager
def umap_import_cache() -> Iterator[None]:
    """Import umap-learn inside this block to cache its compiled kernels on disk.

    A no-op when umap-learn is already imported (its functions are decorated
    by then) or when the cache folder cannot be created.
    """
    if "umap" in sys.modules:
        yield
        return
    import numba
    import pynndescent  # noqa: F401  (imported as it is, before the decorators change)

    from gpuseg.data.cache import cache_root

    folder = cache_folder(cache_root())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.info("numba cache for umap-learn disabled: %s", exc)
        yield
        return
    config: Any = numba.config  # its settings are set at import, invisible to type checkers
    saved = numba.njit, numba.jit, config.CACHE_DIR
    # numba picks a function's cache folder when it decorates it, i.e. during the import.
    numba.njit, numba.jit = _defaulting_to_cache(numba.njit), _defaulting_to_cache(numba.jit)
    config.CACHE_DIR = str(folder)
    try:
        yield
    finally:
        numba.njit, numba.jit, config.CACHE_DIR = saved
