"""Facts about the machine this process runs on: its processor and the memory it may still use.

Read from ``/proc`` and the cgroup files on Linux, with portable fallbacks; the
CPU backend reports them and the loader sizes a whole partitioned data set by them.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), or what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_available_bytes() -> int:
    """Bytes of host RAM available to this process; ``sys.maxsize`` where nothing says."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = sys.maxsize  # no way to tell (not Linux): never refuse for lack of a number
    headroom = _cgroup_headroom()
    return available if headroom is None else min(available, headroom)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: (limit, usage, statistics, reclaimable-cache key) of cgroup v2 and v1 memory controllers.
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
     "/sys/fs/cgroup/memory.stat", "inactive_file"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
     "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
)


def _cgroup_headroom() -> int | None:
    """What a container's memory limit still allows (its page cache counts as free), or None.

    MemAvailable describes the whole host; a container is killed at its
    cgroup limit long before the host runs out.
    """
    for limit_file, usage_file, stat_file, cache_key in _CGROUP_FILES:
        try:
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max":
                return None
            limit, usage = int(limit_text), int(Path(usage_file).read_text())
            stats = dict(line.split() for line in Path(stat_file).read_text().splitlines())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # cgroup v1 spells "no limit" as a page-rounded 2**63 - 1
            return None
        return max(0, limit - usage + int(stats.get(cache_key, 0)))
    return None
