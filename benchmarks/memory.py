"""Peak resident memory of the current process, from Linux's /proc (shared by the benchmarks)."""
from __future__ import annotations


def status_kib(field: str, pid: int | str = "self") -> int:
    """A ``/proc/<pid>/status`` field in KiB (``VmRSS``, ``VmHWM``, ...); this process by default."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss() -> None:
    """Make VmHWM restart from the current resident size (Linux 4.0+)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")
