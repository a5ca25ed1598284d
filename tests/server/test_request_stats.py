"""The per-worker request numbers behind /metrics: snapshots, their sum, and retiring a worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pounce.features.metrics import Metrics
from pounce.features.request_stats import (
    BUCKETS,
    RequestStats,
    Series,
    merge,
    read_snapshots,
    retire,
    write_snapshot,
)


def stats_with(requests: int, seconds: float, *, in_flight: int = 0) -> RequestStats:
    stats = RequestStats()
    series = stats.series[("GET", "/items/{id}", "200")] = Series()
    for _ in range(requests):
        series.observe(seconds)
    stats.bytes_sent = 100 * requests
    stats.shed["queue_full"] = 1
    stats.in_flight = in_flight
    stats.open_connections = in_flight
    return stats


def test_observations_land_in_the_first_bucket_that_holds_them() -> None:
    series = Series()
    for seconds in (0.001, 0.005, 0.3, 99.0):
        series.observe(seconds)
    assert series.count == 4
    assert series.buckets[0] == 2  # le=0.005 includes its bound
    assert series.buckets[BUCKETS.index(0.5)] == 1
    assert series.buckets[-1] == 1  # +Inf


def test_worker_snapshots_sum_and_a_retired_worker_keeps_its_counters(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 101, stats_with(3, 0.01, in_flight=2).snapshot())
    write_snapshot(tmp_path, 102, stats_with(4, 0.2, in_flight=1).snapshot())
    total = merge(read_snapshots(tmp_path))
    [(method, route, status, count, seconds, buckets)] = total["series"]
    assert (method, route, status, count) == ("GET", "/items/{id}", "200", 7)
    assert abs(seconds - (0.03 + 0.8)) < 1e-9
    assert sum(buckets) == 7
    assert (total["bytes_sent"], total["shed"], total["in_flight"]) == (700, {"queue_full": 2}, 3)

    retire(tmp_path, 101)
    after = merge(read_snapshots(tmp_path))
    assert after["series"][0][3] == 7  # its requests still count
    assert (after["in_flight"], after["open_connections"]) == (1, 1)  # its gauges do not
    assert merge(read_snapshots(tmp_path, skip_pid=102))["series"][0][3] == 3


def test_a_snapshot_that_cannot_be_written_is_logged_once_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "removed"
    metrics = Metrics(lambda *a: None, shared=gone)  # type: ignore[arg-type]
    metrics.tick()
    metrics.tick()
    warnings = [r for r in caplog.records if "cannot share this worker's metrics" in r.getMessage()]
    assert len(warnings) == 1 and str(gone) in warnings[0].getMessage()
    gone.mkdir()
    metrics.tick()
    assert [p.name for p in gone.iterdir()] == [f"stats-{os.getpid()}.json"]
