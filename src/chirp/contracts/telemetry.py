"""Deploy posture as telemetry: the freeze-time report as Prometheus gauges and one JSON log line.

`App.freeze()` calls `publish(app, report)`. That

- logs one line on the `chirp.contracts` logger whose message is a JSON object
  (`"event": "chirp.contract_check"`, target, env, ok, counts and one entry per finding), and
- makes the report available to Prometheus as

  - `chirp_contract_findings{rule,severity}`: unsuppressed findings per rule and severity, and
  - `chirp_contract_check_timestamp_seconds`: when the check ran (Unix time).

The gauges are served by pounce's metrics endpoint (`metrics_enabled` / `--metrics`): the
collector is handed to `pounce.features.metrics.add_collector`, so they appear on the same
`/metrics` page as the server's own series, in single-process and multi-worker mode alike
(every worker runs the same check, so any worker answering a scrape reports the same posture).
An app exposing metrics some other way can call `register(registry)` with its own
prometheus-client registry (default: the global one).

Nothing here imports prometheus-client until a scrape asks for the values.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from chirp.contracts.model import Report

logger = logging.getLogger("chirp.contracts")

FINDINGS = "chirp_contract_findings"
TIMESTAMP = "chirp_contract_check_timestamp_seconds"


class ContractCollector:
    """A prometheus-client collector reporting the most recently published report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.report: Report | None = None
        self.timestamp: float | None = None

    def update(self, report: Report, timestamp: float) -> None:
        with self._lock:
            self.report = report
            self.timestamp = timestamp

    def samples(self) -> tuple[dict[tuple[str, str], int], float | None]:
        """`{(rule, severity): count}` and the timestamp, without touching prometheus-client."""
        with self._lock:
            report, stamp = self.report, self.timestamp
        counts: dict[tuple[str, str], int] = {}
        if report is not None:
            for finding in report.active:
                key = (finding.rule_id, finding.severity.label if finding.severity else "info")
                counts[key] = counts.get(key, 0) + 1
        return counts, stamp

    def describe(self) -> list[Any]:
        return []  # values change per report; nothing to pre-declare

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        counts, stamp = self.samples()
        if stamp is None:
            return
        findings = GaugeMetricFamily(
            FINDINGS,
            "Unsuppressed findings of the freeze-time contract check, per rule and severity.",
            labels=("rule", "severity"),
        )
        for (rule_id, severity), count in sorted(counts.items()):
            findings.add_metric((rule_id, severity), count)
        yield findings
        yield GaugeMetricFamily(TIMESTAMP, "Unix time of the freeze-time contract check.", value=stamp)


COLLECTOR = ContractCollector()
_hooked = False
_hook_lock = threading.Lock()


def log_record(report: Report, timestamp: float) -> dict[str, Any]:
    """The structured log line's payload."""
    return {
        "event": "chirp.contract_check",
        "timestamp": round(timestamp, 3),
        "target": report.target,
        "env": report.env,
        "ok": report.ok,
        "counts": report.counts,
        "rules_run": len(report.rules),
        "duration_ms": report.duration_ms,
        "version": report.version,
        "findings": [
            {
                "rule": f.rule_id,
                "severity": f.severity.label if f.severity else "info",
                "subject": f.subject,
                "suppressed": f.suppressed is not None,
            }
            for f in report.findings
        ],
    }


def publish(app: Any, report: Report) -> None:
    """Record the freeze-time `report`: one JSON log line, and the gauges for pounce's `/metrics`."""
    timestamp = time.time()
    COLLECTOR.update(report, timestamp)
    logger.info("%s", json.dumps(log_record(report, timestamp), separators=(",", ":")))
    _hook_pounce()


def _hook_pounce() -> None:
    """Hand the collector to pounce's metrics endpoint, once per process."""
    global _hooked
    with _hook_lock:
        if _hooked:
            return
        try:
            from pounce.features.metrics import add_collector
        except ImportError:  # a pounce without the metrics feature
            return
        add_collector(COLLECTOR)
        _hooked = True


def register(registry: Any = None) -> ContractCollector:
    """Also expose the gauges on a prometheus-client `registry` (default: the global one)."""
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(COLLECTOR)
    return COLLECTOR
