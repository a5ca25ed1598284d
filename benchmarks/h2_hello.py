"""HTTP/2 plain-text hello with h2load (-n 50000 -c 16 -m 10): pounce vs hypercorn, one worker.

Run: python benchmarks/h2_hello.py [--requests 50000]
Needs `h2load` (Debian: nghttp2-client) and `pip install hypercorn`. Both servers speak
cleartext HTTP/2 with prior knowledge here, so TLS cost does not blur the comparison.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from http11_hello import HERE, free_port, wait_for

SERVERS = {
    "pounce": lambda port: [sys.executable, "-m", "pounce", "serve", "--app", "apps:raw", "--port", str(port),
                            "--no-access-log", "--log-level", "warning"],
    "hypercorn": lambda port: [sys.executable, "-m", "hypercorn", "apps:raw", "--bind", f"127.0.0.1:{port}",
                               "--log-level", "warning", "--config", "hypercorn.toml"],
}  # fmt: skip


def h2load(port: int, requests: int) -> tuple[float, int]:
    out = subprocess.run(
        ["h2load", "-n", str(requests), "-c", "16", "-m", "10", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    succeeded = int(re.search(r"(\d+) succeeded", out).group(1))  # type: ignore[union-attr]
    return rps, succeeded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    results = {}
    for name, command in SERVERS.items():
        port = free_port()
        proc = subprocess.Popen(command(port), cwd=HERE, stdout=subprocess.DEVNULL)
        try:
            wait_for(port)
            h2load(port, 2000)  # warm-up
            results[name] = h2load(port, args.requests)
        finally:
            proc.terminate()
            proc.wait(10)
    for name, (rps, ok) in results.items():
        print(f"{name:<10} {rps:>10.0f} req/s  {ok}/{args.requests} succeeded")
    ratio = results["pounce"][0] / results["hypercorn"][0]
    print(f"\npounce / hypercorn (h2): {ratio:.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
