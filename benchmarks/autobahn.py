"""Run the Autobahn|Testsuite fuzzing client against pounce's WebSocket echo app.

Run: python benchmarks/autobahn.py [--quick] [--chirp] [--wstest PATH]
`--quick` skips the slow cases 9.*, 12.* and 13.* (the full suite takes several minutes);
`--chirp` targets the echo written as a chirp `@app.websocket` route instead of the raw
ASGI one. Writes the HTML/JSON report under benchmarks/autobahn-report/ and prints the
verdict counts; exits 1 if any case is neither OK, NON-STRICT nor INFORMATIONAL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter

from harness import HERE, free_port, pounce_command, wait_for

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--chirp", action="store_true", help="target the chirp WebSocket route")
    parser.add_argument("--wstest", default="/work/shared/tools/wstest")
    args = parser.parse_args()
    port = free_port()
    target = "ws_echo_chirp:app" if args.chirp else "ws_echo:app"
    server = subprocess.Popen(pounce_command(target, port), cwd=HERE)
    outdir = HERE / "autobahn-report"  # not committed; docs/autobahn.md keeps the summary
    try:
        wait_for(port)
        spec = {
            "outdir": str(outdir),
            "servers": [{"agent": "pounce", "url": f"ws://127.0.0.1:{port}"}],
            "cases": ["*"],
            "exclude-cases": ["9.*", "12.*", "13.*"] if args.quick else [],
            "exclude-agent-cases": {},
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        subprocess.run(  # not from here: this file's name would shadow wstest's `autobahn` package
            [args.wstest, "-m", "fuzzingclient", "-s", f.name],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
    finally:
        server.terminate()
        server.wait(10)
    results = json.loads((outdir / "index.json").read_text())["pounce"]
    counts = Counter(case["behavior"] for case in results.values())
    close_counts = Counter(case["behaviorClose"] for case in results.values())
    failing = sorted(k for k, case in results.items() if case["behavior"] not in PASSING)
    print(f"cases: {len(results)}  behavior: {dict(counts)}  close: {dict(close_counts)}")
    if failing:
        print("failing:", ", ".join(failing))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
