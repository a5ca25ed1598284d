"""`deploy_sentry.*`: error tracking configured so that it actually reports."""

from __future__ import annotations

from collections.abc import Iterator

from chirp.contracts.model import Finding, Severity, everywhere, rule
from chirp.contracts.snapshot import Snapshot

W = Severity.WARNING


@rule(
    "deploy_sentry.no_traces",
    title="Sentry configured with tracing at 0",
    severity=everywhere(W),
    hint="Set sentry_traces_sample_rate above 0 (e.g. 0.1), or drop it deliberately with a suppression.",
)
def no_traces(snap: Snapshot) -> Iterator[Finding]:
    """A DSN with a zero sample rate sends errors but no performance data, usually by mistake."""
    cfg = snap.config
    if cfg is not None and cfg.sentry_dsn and cfg.sentry_traces_sample_rate == 0:
        yield Finding(
            "sentry_dsn is set but sentry_traces_sample_rate is 0",
            snap.config_location,
            "sentry_traces_sample_rate",
        )


RULES = (no_traces,)
