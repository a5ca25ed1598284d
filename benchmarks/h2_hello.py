"""HTTP/2 plain-text hello with h2load (-n 50000 -c 16 -m 10): pounce vs hypercorn, one worker.

Run: python benchmarks/h2_hello.py [--requests 50000]
hypercorn is installed on first use into `.bench/` at the repository root, and `h2load` from
Debian (nghttp2-client) when it is missing. Both servers speak
cleartext HTTP/2 with prior knowledge here, so TLS cost does not blur the comparison.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Callable

from harness import HERE, free_port, peer_python, pounce_command, require_tool, wait_for


def servers() -> dict[str, Callable[[int], list[str]]]:
    peer = str(peer_python("hypercorn"))
    return {
        "pounce": lambda port: pounce_command("hello_raw:app", port),
        "hypercorn": lambda port: [peer, "-m", "hypercorn", "hello_raw:app", "--bind", f"127.0.0.1:{port}",
                                   "--log-level", "warning", "--config", "hypercorn.toml"],
    }  # fmt: skip


def h2load(port: int, requests: int) -> tuple[float, int]:
    out = subprocess.run(
        [require_tool("h2load", "nghttp2-client"), "-n", str(requests), "-c", "16", "-m", "10", f"http://127.0.0.1:{port}/"],
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
    for name, command in servers().items():
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
