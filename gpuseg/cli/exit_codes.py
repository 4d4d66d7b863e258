"""The exit codes of every ``gpuseg`` command (the README's table)."""
from __future__ import annotations

EXIT_OK, EXIT_BUG, EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
