"""Worker scaling and the cost of the production features, on the HTTP/1.1 hello app.

Run: python benchmarks/workers_scaling.py [--duration 10]
Measures in one run: pounce with 1 worker, with 2 workers, and with 2 workers plus
metrics and rate limiting (a budget far above the load, so nothing is refused), and
prints the ratios: 2 workers / 1 worker (target >= 1.7) and the features' cost
(target <= 15 %). Note that wrk runs on the same 2 cores as the server.
"""

from __future__ import annotations

import argparse
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


def measure(workers: int, duration: int, config: Path | None = None) -> float:
    port = free_port()
    command = pounce_command("hello_raw:app", port, "--workers", str(workers))
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "pounce.toml"
        config.write_text(FEATURES)
        one = measure(1, args.duration)
        two = measure(2, args.duration)
        featured = measure(2, args.duration, config)
    print(f"{'setup':<34} {'req/s':>8}")
    print(f"{'1 worker':<34} {one:>8.0f}")
    print(f"{'2 workers':<34} {two:>8.0f}")
    print(f"{'2 workers + metrics + rate limit':<34} {featured:>8.0f}")
    print(f"\n2 workers / 1 worker: {two / one:.2f}x (target >= 1.7)")
    print(f"metrics + rate limiting cost: {(1 - featured / two) * 100:.0f}% (target <= 15%)")


if __name__ == "__main__":
    main()
