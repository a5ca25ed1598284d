"""Python bytecodes a request executes, by function: pounce's fast path against uvicorn[standard].

Run: python benchmarks/bytecodes.py [--suite http1|chirp] [--requests 2000] [--access-log] [--top 25]
                                    [--connection-close]

Two servers can execute the same number of machine instructions a request and still differ in
CPU time: the interpreter dispatches every bytecode with an indirect jump that the CPU often
predicts wrongly, so a request served mostly in Python bytecode costs more cycles than one whose
work is mostly done in C (`instructions.py --branches` counts the mispredictions). This script
counts the bytecodes themselves: each server runs under a trace function that counts the opcodes
of every Python function (start-up excluded the same way as in `instructions.py`: a run without
the requests is subtracted), then prints the total a request and the functions that cost most.
The trace slows a server down about a hundredfold; only the counts are meaningful.
`--connection-close` sends each request on a new connection, as in `instructions.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from harness import HERE, free_port
from instructions import drive, suites

# Run as `python -c TRACER module args...`: counts the opcodes of every function (by file,
# name and first line) and writes them as JSON to $BYTECODES_OUT when the server exits.
TRACER = """
import atexit, collections, json, os, runpy, sys
counts = collections.Counter()
def on_call(frame, event, arg):
    code = frame.f_code
    key = f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}"
    frame.f_trace_opcodes = True
    frame.f_trace_lines = False
    def on_event(frame, event, arg):
        if event == "opcode":
            counts[key] += 1
        return on_event
    return on_event
server = os.getpid()
def dump():  # by the server only (not a child it forked), untraced, whole or not at all
    sys.settrace(None)
    if os.getpid() == server:
        path = os.environ["BYTECODES_OUT"]
        with open(path + ".part", "w") as out:
            json.dump(dict(counts), out)
        os.replace(path + ".part", path)
atexit.register(dump)
sys.argv = sys.argv[1:]
sys.settrace(on_call)
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def bytecodes(command: list[str], requests: int, connections: int, out: Path, close: bool) -> Counter[str]:
    """Opcodes executed by each function of the server, serving a warm-up and then `requests`."""
    port = free_port()
    python, dash_m, *argv = (arg.replace("{port}", str(port)) for arg in command)
    assert dash_m == "-m", command
    server = subprocess.Popen(
        [python, "-c", TRACER, *argv],
        cwd=HERE, env={**os.environ, "BYTECODES_OUT": str(out)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    drive(server, port, requests, connections, close=close)
    return Counter(json.loads(out.read_text()))


def short(key: str) -> str:
    """A function's key without the directories of the environment it was imported from."""
    path, line, name = key.rsplit(":", 2)
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line} {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("http1", "chirp"), default="http1")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=64, help="HTTP/1.1 keep-alive connections")
    parser.add_argument("--access-log", action="store_true", help="every server with its access log on")
    parser.add_argument("--top", type=int, default=25, help="functions listed for each server")
    parser.add_argument("--connection-close", action="store_true", help="every request on a new connection")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp()) / "bytecodes.json"
    totals = {}
    for name, command in suites(args.suite, args.access_log).items():
        base = bytecodes(command, 0, args.connections, out, args.connection_close)
        served = bytecodes(command, args.requests, args.connections, out, args.connection_close)
        per_request = {key: (served[key] - base[key]) / args.requests for key in served}
        totals[name] = sum(per_request.values())
        print(f"{name}: {totals[name]:,.0f} bytecodes/request")
        for key, count in sorted(per_request.items(), key=lambda item: -item[1])[: args.top]:
            print(f"  {count:8.1f}  {short(key)}")
    out.unlink()
    out.parent.rmdir()
    first, second = totals
    print(f"{first} / {second}: {totals[first] / totals[second]:.3f} of the bytecodes")


if __name__ == "__main__":
    main()
