"""Exceptions that separate a user's mistake from a bug.

The CLI turns :class:`GpusegError` into a one-line message and exit code 2;
anything else is a bug and exits 1 with its traceback.
"""
from __future__ import annotations


class GpusegError(Exception):
    """A problem the user can fix: bad input, a bad option, a missing resource."""

    def __reduce__(self) -> tuple[type, tuple]:
        # Raised on a Dask worker, a user error reaches the client by pickle and must arrive as
        # itself (the CLI prints it as one line). Without its own reducer, the tblib pickling
        # that distributed installs rebuilds ResourceLimitError through MemoryError.__new__,
        # which fails, and the client then gets a bare Exception.
        return type(self), self.args


class DataValidationError(GpusegError, ValueError):
    """An input file breaks the Instacart layout (file, column and first bad row are named)."""


class ConfigError(GpusegError, ValueError):
    """A configuration field is outside its allowed range."""


class BackendUnavailableError(GpusegError, RuntimeError):
    """The requested backend cannot run on this machine."""


class ResourceLimitError(GpusegError, MemoryError):
    """A stage would exceed the memory available; the message names the option that reduces it."""


class OutputError(GpusegError, ValueError):
    """An output path would lose data (an input, another run's file, a foreign folder) or is unwritable."""
