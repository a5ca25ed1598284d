"""Deploy-check speed: `chirp check --deploy` vs Django's `check --deploy`, and `app.check()` cost per route.

Run: python benchmarks/check_speed.py [--runs 21] [--no-bytecode-cache]
Django runs from its own environment, `.bench/` at the repository root (git-ignored; made with
`pip install django` on first use); uses `hyperfine` when it is on PATH.

(a) Cold CLI wall time, one fresh process per run: `chirp check app:app --deploy` on a project
    from `chirp new` against `python manage.py check --deploy` on a project from
    `django-admin startproject`. Both are warmed up first so bytecode is cached (in a private
    PYTHONPYCACHEPREFIX, so nothing is written into the source tree); the two commands are
    interleaved run by run so machine noise hits both alike. chirp runs twice: as is (it also
    reads the project's Dockerfile and Kubernetes manifest, which Django does not) and with
    `--no-artefacts` (the same scope as Django's check). Target: ratio <= 0.3.
(b) In-process `app.check()` (and `app.check(deploy=True)`) on apps with 100 / 1,000 / 5,000
    routes, timed as the first check of a freshly built app (which also freezes it) and as a
    repeated check. Target: <= 50 ms at 1,000 routes, and cost linear in routes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import peer_python

TARGET_CLI_RATIO = 0.3
TARGET_1000_ROUTES_MS = 50.0
ROUTE_COUNTS = (10, 100, 1_000, 10_000)


# -- (a) the CLI, cold ------------------------------------------------------------------------
def django_python() -> Path:
    """The interpreter of `.bench/`, with Django installed into it the first time."""
    return peer_python("django")


def make_projects(root: Path) -> tuple[Path, Path]:
    """A fresh `chirp new` project and a fresh `django-admin startproject` project under `root`."""
    subprocess.run([sys.executable, "-m", "chirp", "new", "benchapp"], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run([str(django_python()), "-m", "django", "startproject", "benchsite"], cwd=root, check=True)
    return root / "benchapp", root / "benchsite"


def bench_env(root: Path, bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if bytecode_cache:
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    # What a deploy-ready chirp project is given in CI; Django's fresh project needs nothing.
    env["CHIRP_SECRET_KEY"] = secrets.token_urlsafe(48)
    env["CHIRP_ALLOWED_HOSTS"] = "app.example.com"
    env.pop("CHIRP_ENV", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, proc.returncode


def time_loop(
    commands: dict[str, tuple[list[str], Path]], env: dict[str, str], runs: int
) -> dict[str, float]:
    """Median wall seconds per command; runs interleaved, after 3 warm-up runs of each."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(3):
        for cmd, cwd in commands.values():
            run_once(cmd, cwd, env)
    for _ in range(runs):
        for name, (cmd, cwd) in commands.items():
            elapsed, _code = run_once(cmd, cwd, env)
            times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def time_hyperfine(commands: dict[str, tuple[list[str], Path]], env: dict[str, str], runs: int,
                   out: Path) -> dict[str, float]:  # fmt: skip
    """Median wall seconds per command, measured by hyperfine."""
    result = {}
    for name, (cmd, cwd) in commands.items():
        export = out / f"{name}.json"
        subprocess.run(
            ["hyperfine", "--warmup", "3", "--runs", str(runs), "--ignore-failure", "--style", "none",
             "--export-json", str(export), subprocess.list2cmdline(cmd)],
            cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        result[name] = float(json.loads(export.read_text())["results"][0]["median"])
    return result


def bench_cli(runs: int, bytecode_cache: bool) -> float:
    bin_dir = Path(sys.executable).parent
    chirp_cli = shutil.which("chirp", path=str(bin_dir)) or "chirp"
    with tempfile.TemporaryDirectory(prefix="check-speed-") as tmp:
        root = Path(tmp)
        chirp_dir, django_dir = make_projects(root)
        env = bench_env(root, bytecode_cache)
        commands = {
            "chirp": ([chirp_cli, "check", "app:app", "--deploy"], chirp_dir),
            "chirp-app": ([chirp_cli, "check", "app:app", "--deploy", "--no-artefacts"], chirp_dir),
            "django": ([str(django_python()), "manage.py", "check", "--deploy"], django_dir),
        }
        codes = {name: run_once(cmd, cwd, env)[1] for name, (cmd, cwd) in commands.items()}
        tool = "hyperfine" if shutil.which("hyperfine") else "perf_counter loop"
        if shutil.which("hyperfine"):
            medians = time_hyperfine(commands, env, runs, root)
        else:
            medians = time_loop(commands, env, runs)
    cache = "cached bytecode" if bytecode_cache else "no bytecode cache"
    print(f"(a) cold CLI wall time, median of {runs} runs ({tool}, {cache})")
    labels = {
        "chirp": "chirp check app:app --deploy  (chirp new)",
        "chirp-app": "  ... --no-artefacts (Django's scope)",
        "django": "manage.py check --deploy      (startproject)",
    }
    for name, seconds in medians.items():
        print(f"    {labels[name]:<48} {seconds * 1000:8.1f} ms   exit {codes[name]}")
    for name in ("chirp", "chirp-app"):
        ratio = medians[name] / medians["django"]
        verdict = "met" if ratio <= TARGET_CLI_RATIO else "MISSED"
        print(f"    {name} / django: {ratio:.2f}x   (target <= {TARGET_CLI_RATIO}x: {verdict})")
    print()
    return medians["chirp"] / medians["django"]


# -- (b) app.check() in process ---------------------------------------------------------------
def build_app(routes: int):  # type: ignore[no-untyped-def]
    """A deploy-ready app with `routes` routes: every tenth one mutating, half with a parameter."""
    from chirp import App, AppConfig, secure_stack

    config = AppConfig(
        secret_key=secrets.token_urlsafe(48),
        allowed_hosts=("app.example.com",),
        metrics_enabled=True,
        csp_nonce_enabled=True,
        strict_transport_security="max-age=63072000; includeSubDomains",
    )
    app = App(config)
    for middleware in secure_stack(config):
        app.add_middleware(middleware)

    def make_handler(i: int) -> Callable[..., object]:
        if i % 2:

            def item(item_id: int) -> dict[str, int]:
                return {"route": i, "id": item_id}

            return item

        def page() -> str:
            return f"page {i}"

        return page

    for i in range(routes):
        methods = ("POST",) if i % 10 == 9 else ("GET",)
        path = f"/section{i % 50}/r{i}/{{item_id:int}}" if i % 2 else f"/section{i % 50}/r{i}"
        app.route(path, methods=methods, name=f"r{i}")(make_handler(i))
    return app


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench_in_process(repeat: int) -> float:
    build_app(10).check(deploy=True)  # import the rule modules once, outside the timings
    print("(b) app.check() in process, median ms (first = first check of a fresh app, freezing it)")
    header = f"    {'routes':>6} {'first':>9} {'repeat':>9} {'deploy':>9} {'µs/route':>9}  findings"
    print(header)
    rows = {}
    for count in ROUTE_COUNTS:
        first_samples = []
        for _ in range(max(3, repeat // 4)):
            app = build_app(count)
            started = time.perf_counter()
            report = app.check()
            first_samples.append((time.perf_counter() - started) * 1000)
        first = statistics.median(first_samples)
        again = median_ms(app.check, repeat)
        deploy = median_ms(lambda app=app: app.check(deploy=True), repeat)  # type: ignore[misc]
        failing = sum(1 for f in report.findings if not f.suppressed)
        rows[count] = (first, again, deploy)
        print(
            f"    {count:>6} {first:>9.2f} {again:>9.2f} {deploy:>9.2f} {again * 1000 / count:>9.2f}  {failing}"
        )
    first_1000 = rows[1_000][0]
    verdict = "met" if first_1000 <= TARGET_1000_ROUTES_MS else "MISSED"
    print(f"    app.check() on 1,000 routes: {first_1000:.2f} ms first call, {rows[1_000][1]:.2f} ms repeated "
          f"(target <= {TARGET_1000_ROUTES_MS:.0f} ms: {verdict})")  # fmt: skip
    low, high = ROUTE_COUNTS[0], ROUTE_COUNTS[-1]
    slope = (rows[high][1] - rows[low][1]) / (high - low) * 1000
    growth = (rows[high][1] / rows[1_000][1]) / (high / 1_000)
    print(f"    marginal cost {slope:.2f} µs/route; 10,000 vs 1,000 routes = {growth:.2f}x of linear "
          "(1.00 = exactly linear)\n")  # fmt: skip
    return first_1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="CLI runs per command (default 21)")
    parser.add_argument("--repeat", type=int, default=20, help="in-process repetitions (default 20)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run the CLIs with PYTHONDONTWRITEBYTECODE=1 (chirp compiles its sources every run)")  # fmt: skip
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process part")
    args = parser.parse_args()
    ok = True
    if not args.skip_cli:
        django_python()
        ok &= bench_cli(args.runs, not args.no_bytecode_cache) <= TARGET_CLI_RATIO
    ok &= bench_in_process(args.repeat) <= TARGET_1000_ROUTES_MS
    print("all targets met" if ok else "some targets MISSED")


if __name__ == "__main__":
    main()
