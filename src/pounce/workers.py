"""How many workers a launch runs and in which mode.

One answer for the server, its banner and the contract rules, so a check never counts
workers or resolves `worker_mode="auto"` differently from the server that will run them.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The smaller of the affinity mask and the cgroup CPU quota, at least 1.

    `os.cpu_count()` reports the host's CPUs, which over-counts inside a container.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        count = min(count, quota_cpus(quota))
    return max(1, count)


def quota_cpus(quota: float) -> int:
    """The CPUs a CPU quota (in cores, e.g. a container's limit of 1.5) gives the workers."""
    return max(1, math.ceil(quota))


def worker_count(configured: int) -> int:
    """Workers that will run: `configured`, or the available CPUs when it is 0 (auto)."""
    return configured if configured > 0 else available_cpus()


def free_threaded() -> bool:
    """True on a free-threaded interpreter running with the GIL disabled."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return probe is not None and not probe()


def effective_worker_mode(worker_mode: str) -> str:
    """`auto` is async on the GIL build and sync on free-threaded Python."""
    if worker_mode != "auto":
        return worker_mode
    return "sync" if free_threaded() else "async"


def _cgroup_quota(root: Path) -> float | None:
    v2 = root / "cpu.max"
    try:
        text = v2.read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
