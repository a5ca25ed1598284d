"""The numbers behind pounce's own metrics, counted in plain Python and summed at scrape time.

Counting a request is a handful of integer and float additions. prometheus-client's
multiprocess mode would instead write every increment through a lock into a memory-mapped
file (four or five writes per request, more than the request itself costs), so pounce keeps
its request series here and hands them to prometheus-client as a custom collector:

- one process: the collector reads this process's `RequestStats` when scraped;
- several workers: every worker writes a snapshot of its stats into the directory its
  supervisor shares with it (`stats-<pid>.json`, replaced atomically) every tick and when it
  stops; a scrape of any worker sums the snapshots. Counters of a worker that died stay in
  the sum; its gauges are zeroed by the supervisor (`retire`), so gauges count live
  workers only. A snapshot is at most one tick (0.1 s) old.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""Upper bounds (seconds) of the duration histogram, prometheus-client's defaults; +Inf follows."""

Labels = tuple[str, str, str]  # method, route template, status
Snapshot = dict[str, Any]


class Series:
    """One label set's request count, duration sum and per-bucket counts (not cumulative)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1


class RequestStats:
    """What one process has counted since it started."""

    def __init__(self) -> None:
        self.series: dict[Labels, Series] = {}
        self.bytes_sent = 0
        self.rate_limited = 0
        self.shed: dict[str, int] = {}
        self.in_flight = 0
        self.open_connections = 0

    def snapshot(self) -> Snapshot:
        """A JSON-ready copy, taken on the event loop so nothing changes while it is read."""
        return {
            "series": [[*labels, s.count, s.total, list(s.buckets)] for labels, s in self.series.items()],
            "bytes_sent": self.bytes_sent,
            "rate_limited": self.rate_limited,
            "shed": dict(self.shed),
            "in_flight": self.in_flight,
            "open_connections": self.open_connections,
        }


# -- several workers -------------------------------------------------------------------------
def snapshot_path(directory: Path, pid: int) -> Path:
    return directory / f"stats-{pid}.json"


def write_snapshot(directory: Path, pid: int, snapshot: Snapshot) -> None:
    """Replace this worker's snapshot file in one step, so a reader never sees half of it."""
    path = snapshot_path(directory, pid)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(snapshot))
    os.replace(partial, path)


def read_snapshots(directory: Path, skip_pid: int | None = None) -> Iterator[Snapshot]:
    for path in sorted(directory.glob("stats-*.json")):
        if skip_pid is not None and path == snapshot_path(directory, skip_pid):
            continue
        with contextlib.suppress(OSError, ValueError):  # a worker's file being replaced right now
            yield json.loads(path.read_text())


def retire(directory: Path, pid: int) -> None:
    """A worker exited: keep its counters in the sum, drop its gauges (it holds no requests)."""
    path = snapshot_path(directory, pid)
    try:
        snapshot = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    snapshot["in_flight"] = snapshot["open_connections"] = 0
    write_snapshot(directory, pid, snapshot)


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The whole server's numbers: every field summed over the workers' snapshots."""
    series: dict[Labels, list[Any]] = {}
    total: Snapshot = {"series": [], "bytes_sent": 0, "rate_limited": 0, "shed": {}, "in_flight": 0,
                       "open_connections": 0}  # fmt: skip
    for snap in snapshots:
        for method, route, status, count, seconds, buckets in snap["series"]:
            entry = series.setdefault((method, route, status), [0, 0.0, [0] * len(buckets)])
            entry[0] += count
            entry[1] += seconds
            entry[2] = [a + b for a, b in zip(entry[2], buckets, strict=True)]
        for key in ("bytes_sent", "rate_limited", "in_flight", "open_connections"):
            total[key] += snap[key]
        for reason, count in snap["shed"].items():
            total["shed"][reason] = total["shed"].get(reason, 0) + count
    total["series"] = [[*labels, *entry] for labels, entry in series.items()]
    return total


# -- prometheus-client ------------------------------------------------------------------------
class SnapshotCollector:
    """A prometheus-client collector presenting one (merged) snapshot as pounce's series."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        snap = self.snapshot
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily("pounce_requests", "HTTP requests answered.", labels=labels)
        duration = HistogramMetricFamily(
            "pounce_request_duration_seconds", "Time to answer an HTTP request.", labels=labels
        )
        bounds = [repr(float(b)) for b in BUCKETS] + ["+Inf"]
        for method, route, status, count, seconds, buckets in snap["series"]:
            values = [method, route, status]
            requests.add_metric(values, count)
            cumulative, running = [], 0
            for bound, n in zip(bounds, buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            duration.add_metric(values, cumulative, seconds)
        yield requests
        yield duration
        yield GaugeMetricFamily(
            "pounce_requests_in_flight", "Requests being answered.", value=snap["in_flight"]
        )
        yield GaugeMetricFamily(
            "pounce_open_connections", "Open client connections.", value=snap["open_connections"]
        )
        yield CounterMetricFamily(
            "pounce_response_bytes", "Response body bytes sent.", value=snap["bytes_sent"]
        )
        yield CounterMetricFamily(
            "pounce_rate_limited", "Requests refused by the rate limiter.", value=snap["rate_limited"]
        )
        shed = CounterMetricFamily("pounce_shed", "Requests refused by load shedding.", labels=["reason"])
        for reason, count in sorted(snap["shed"].items()):
            shed.add_metric([reason], count)
        yield shed
