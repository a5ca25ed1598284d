"""Worker scaling and the cost of the production features, over HTTP/1.1.

Run: python benchmarks/workers_scaling.py [--duration 10] [--rounds 1] [--app hello|cpu]
Measures in one run: pounce with 1 worker, with 2 workers, and with 2 workers plus
metrics and rate limiting (a budget far above the load, so nothing is refused), and
prints the ratios: 2 workers / 1 worker (target >= 1.8) and the features' cost
(target <= 15 %). wrk runs on the same 2 cores as the server: with the hello app
(`hello_raw.py`, the default) a worker needs about as much CPU a request as wrk does, so
two workers and wrk contend for the two cores; `--app cpu` (`cpu_app.py`, about 0.5 ms of
CPU a request) measures the workers' own scaling, wrk then taking a few percent of a core.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from harness import HERE, free_port, pounce_command, wait_for, wrk

FEATURES = """
metrics_enabled = true
rate_limit_enabled = true
rate_limit_requests_per_second = 1000000.0
rate_limit_burst = 1000000
"""


APPS = {"hello": "hello_raw:app", "cpu": "cpu_app:app"}


def measure(app: str, workers: int, duration: int, config: Path | None = None) -> float:
    port = free_port()
    command = pounce_command(app, port, "--workers", str(workers))
    if config is not None:
        command += ["--config", str(config)]
    proc = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        wrk(port, 2, pinned=False)  # warm-up: every worker has taken connections
        return wrk(port, duration, pinned=False)[0]  # the workers may use both CPUs
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians are reported")
    parser.add_argument("--app", choices=tuple(APPS), default="hello")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "pounce.toml"
        config.write_text(FEATURES)
        setups: dict[str, tuple[int, Path | None]] = {
            "1 worker": (1, None),
            "2 workers": (2, None),
            "2 workers + metrics + rate limit": (2, config),
        }
        runs: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(args.rounds):  # setups take turns, so slow drift hits all of them
            for name, (workers, features) in setups.items():
                runs[name].append(measure(APPS[args.app], workers, args.duration, features))
    one, two, featured = runs.values()
    print(
        f"{args.app} app: {'setup':<23} {'req/s':>8}   (medians of {args.rounds} round(s), {args.duration}s each)"
    )
    for name in setups:
        print(f"{name:<34} {statistics.median(runs[name]):>8.0f}")
    # Ratios are taken within each round (runs a few seconds apart), then the median.
    scaling = statistics.median(b / a for a, b in zip(one, two, strict=True))
    cost = statistics.median(1 - c / b for b, c in zip(two, featured, strict=True))
    print(f"\n2 workers / 1 worker: {scaling:.2f}x (target >= 1.8)")
    print(f"metrics + rate limiting cost: {cost * 100:.0f}% (target <= 15%)")


if __name__ == "__main__":
    main()
