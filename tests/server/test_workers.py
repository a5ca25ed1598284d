"""The supervisor with real worker processes: restart, drain, rolling reload, orphan safety."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers.process import ServerProcess, spawn
from pounce.sockets import port_in_use

APP = textwrap.dedent(
    """
    import asyncio, os

    VERSION = "{version}"
    LOG = os.environ["REQUEST_LOG"]
    TRACE = os.environ["TRACE_LOG"]

    def trace(mark):
        with open(TRACE, "a") as fh:
            fh.write(f"{{mark}} {{os.getpid()}}\\n")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({{"type": message["type"] + ".complete"}})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            raise RuntimeError("unsupported scope")
        if scope["path"] == "/slow":  # one byte per accepted request, then some work
            fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, b"x")
            os.close(fd)
            trace("start")
            await asyncio.sleep(float(scope["query_string"] or 0.2))
            trace("end")
        if scope["path"] == "/hang":
            trace("hang")
            await asyncio.sleep(60)
        body = f"{{VERSION}} {{os.getpid()}}".encode()
        await send({{"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]}})
        await send({{"type": "http.response.body", "body": body}})
    """
)


def write_app(directory: Path, version: str) -> None:
    (directory / "workerapp.py").write_text(APP.format(version=version))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_app(tmp_path, "v1")
    return tmp_path


def start(project: Path, workers: int = 2, *flags: str) -> ServerProcess:
    env = {"REQUEST_LOG": str(project / "requests.log"), "TRACE_LOG": str(project / "trace.log")}
    server = spawn(["pounce", "serve", "--app", "workerapp:app", "--port", "0", "--workers", str(workers),
                    "--no-access-log", *flags], project, env, own_group=True)  # fmt: skip
    wait_until(lambda: len(distinct_pids(server.url)) >= workers)  # more: recycled by max_requests
    return server


def distinct_pids(url: str, tries: int = 40) -> set[str]:
    pids = set()
    for _ in range(tries):
        with httpx.Client() as c:  # a fresh connection each time spreads over workers
            pids.add(c.get(url + "/").text.split()[1])
    return pids


def wait_until(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


class Load:
    """Concurrent clients sending requests in a loop until stopped; tallies outcomes."""

    def __init__(self, url: str, clients: int = 8, path: str = "/slow?0.5") -> None:
        self.url = url + path
        self.ok: list[str] = []
        self.failures: list[str] = []
        self.failed_on: list[str | None] = []  # per failure: the worker pid that last answered on it
        self.refused = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        fresh = True  # the next request opens a new connection
        holder: str | None = None  # the worker pid that last answered on this connection
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.get(self.url)
                except httpx.ConnectError:
                    self.refused += 1
                    time.sleep(0.01)
                    continue
                except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    # A new connection the kernel queued but no worker accepted before the
                    # listener closed is reset: refused, never started (the log proves it).
                    if fresh:
                        self.refused += 1
                    else:
                        self._fail(repr(exc), holder)
                    fresh, holder = True, None
                    continue
                except httpx.HTTPError as exc:
                    self._fail(repr(exc), holder)
                    fresh, holder = True, None
                    continue
                fresh = response.headers.get("connection") == "close"
                if response.status_code == 200:
                    self.ok.append(response.text)
                    holder = None if fresh else response.text.split()[1]
                else:
                    self._fail(str(response.status_code), holder)

    def _fail(self, outcome: str, holder: str | None) -> None:
        self.failures.append(outcome)
        self.failed_on.append(holder)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(20)


def test_workers_share_the_socket(project: Path) -> None:
    server = start(project)
    try:
        assert len(distinct_pids(server.url)) == 2
    finally:
        assert server.stop() == 0


def test_killed_worker_is_restarted_while_the_other_serves(project: Path) -> None:
    server = start(project)
    try:
        victim = next(iter(distinct_pids(server.url)))
        os.kill(int(victim), signal.SIGKILL)
        for _ in range(20):
            assert httpx.get(server.url + "/").status_code == 200
        wait_until(lambda: len(distinct_pids(server.url) - {victim}) == 2)
    finally:
        assert server.stop() == 0


def supervisor_only(server: ServerProcess, signum: int) -> None:
    server.proc.send_signal(signum)


def whole_group(server: ServerProcess, signum: int) -> None:
    """As systemd (KillMode=control-group), `kill -- -PGID` or a terminal's Ctrl-C deliver it."""
    os.killpg(server.proc.pid, signum)


@pytest.mark.parametrize(
    ("workers", "deliver", "signum"),
    [
        (2, supervisor_only, signal.SIGTERM),
        (2, whole_group, signal.SIGTERM),
        (2, whole_group, signal.SIGINT),
        (1, supervisor_only, signal.SIGTERM),
        (1, whole_group, signal.SIGINT),
    ],
    ids=["supervisor-SIGTERM", "group-SIGTERM", "group-SIGINT", "single-SIGTERM", "single-group-SIGINT"],
)
def test_graceful_stop_under_load_loses_no_accepted_request(
    project: Path, workers: int, deliver: Callable[[ServerProcess, int], None], signum: int
) -> None:
    server = start(project, workers)
    log = project / "requests.log"
    with Load(server.url) as load:
        wait_until(lambda: len(load.ok) >= 16)  # half-second requests are in flight on every client
        deliver(server, signum)
        if signum == signal.SIGTERM:
            deliver(server, signum)  # SIGTERM again changes nothing (a second SIGINT is a second Ctrl-C)
        assert server.proc.wait(20) == 0
    accepted = log.stat().st_size  # one byte per request the app started
    print(f"{deliver.__name__} {signal.Signals(signum).name}: {accepted} accepted, {len(load.ok)} answered, "
          f"{len(load.failures)} failed, {load.refused} refused after the listener closed")  # fmt: skip
    assert load.failures == []
    assert len(load.ok) == accepted
    assert not any("forcing" in line or "shutdown_timeout reached" in line for line in server.read_log())


def hanging_request(url: str) -> threading.Thread:
    """A request that would keep a graceful drain waiting for a minute."""

    def run() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url + "/hang", timeout=30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("workers", [2, 1])
def test_a_second_ctrl_c_exits_without_waiting(project: Path, workers: int) -> None:
    server = start(project, workers)
    hanging = hanging_request(server.url)
    wait_until(lambda: in_flight(project, "hang"))  # the request is in the app: a drain would wait for it
    whole_group(server, signal.SIGINT)
    wait_until(lambda: any("gracefully" in line or "draining workers" in line for line in server.read_log()))
    started = time.monotonic()
    whole_group(server, signal.SIGINT)
    assert server.proc.wait(10) != 0
    assert time.monotonic() - started < 8  # not the 30 s shutdown_timeout
    hanging.join(5)


@pytest.mark.parametrize("workers", [2, 1])
def test_sigquit_exits_without_waiting(project: Path, workers: int) -> None:
    server = start(project, workers)
    hanging = hanging_request(server.url)
    wait_until(lambda: in_flight(project, "hang"))
    started = time.monotonic()
    server.proc.send_signal(signal.SIGQUIT)
    server.proc.wait(10)
    assert time.monotonic() - started < 8
    hanging.join(5)


def test_sigusr1_reload_under_load_serves_new_code_without_failures(project: Path) -> None:
    server = start(project)
    try:
        with Load(server.url) as load:
            wait_until(lambda: len(load.ok) >= 20)
            write_app(project, "v2")
            server.proc.send_signal(signal.SIGUSR1)
            wait_until(lambda: any(text.startswith("v2") for text in load.ok[-8:]))
            served_before = len(load.ok)
            wait_until(lambda: len(load.ok) >= served_before + 20)
        print(
            f"SIGUSR1 under load: {len(load.ok)} answered, {len(load.failures)} failed, {load.refused} refused"
        )
        assert load.failures == [] and load.refused == 0
        assert {httpx.get(server.url + "/").text.split()[0] for _ in range(10)} == {"v2"}
    finally:
        assert server.stop() == 0


def test_twenty_reloads_under_load_fail_and_refuse_nothing(project: Path) -> None:
    """Every second reload arrives while the previous one is still under way or draining."""
    server = start(project)
    try:
        with Load(server.url, path="/slow?0.2") as load:
            wait_until(lambda: len(load.ok) >= 16)
            for version in range(2, 22):
                write_app(project, f"v{version}")
                server.proc.send_signal(signal.SIGUSR1)
                if version % 2:  # wait for the swap only every other time
                    wait_until(lambda v=version: any(t.startswith(f"v{v} ") for t in load.ok[-16:]), 30)
            wait_until(lambda: any(t.startswith("v21 ") for t in load.ok[-16:]), 30)
            served = len(load.ok)
            wait_until(lambda: len(load.ok) >= served + 16)
        completed = sum("reload complete" in line for line in server.read_log())
        print(f"20 reloads ({completed} generations swapped) under load: {len(load.ok)} answered, "
              f"{len(load.failures)} failed, {load.refused} refused")  # fmt: skip
        assert load.failures == [] and load.refused == 0
        assert {httpx.get(server.url + "/").text.split()[0] for _ in range(10)} == {"v21"}
    finally:
        assert server.stop() == 0


def test_reload_with_broken_code_keeps_the_old_generation(project: Path) -> None:
    server = start(project)
    try:
        (project / "workerapp.py").write_text("raise ImportError('half-written deploy')\n")
        server.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: any("reload aborted" in line for line in server.read_log()))
        assert {httpx.get(server.url + "/").text.split()[0] for _ in range(10)} == {"v1"}
    finally:
        assert server.stop() == 0


def ready_lines(server: ServerProcess) -> list[str]:
    return [line for line in server.read_log() if line.rstrip().endswith(") ready")]


def in_flight(project: Path, pid: str) -> int:
    """Requests the app started in process `pid` and never finished (`pid` "hang": /hang ones)."""
    path = project / "trace.log"
    lines = path.read_text().splitlines() if path.exists() else []
    if pid == "hang":
        return sum(line.startswith("hang ") for line in lines)
    return lines.count(f"start {pid}") - lines.count(f"end {pid}")


def test_a_killed_worker_fails_only_its_in_flight_requests(project: Path) -> None:
    server = start(project)
    try:
        with Load(server.url, path="/slow?0.3") as load:
            wait_until(lambda: len(load.ok) >= 16)
            victim = load.ok[-1].split()[1]
            # Kill it while one of its 0.3 s requests is under way, not in the moment between two
            # (a worker with one connection can be between requests when its last one ended).
            wait_until(lambda: in_flight(project, victim) > 0)
            readied = len(ready_lines(server))
            os.kill(int(victim), signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: len(ready_lines(server)) > readied, 5)
            replaced = time.monotonic() - killed
            served = len(load.ok)
            wait_until(lambda: len(load.ok) >= served + 16)
        lost = in_flight(project, victim)
        print(f"SIGKILL of worker {victim}: {lost} in flight, {len(load.failures)} failed, "
              f"replacement ready in {replaced:.2f} s, {len(load.ok)} answered")  # fmt: skip
        # Every request the victim had started fails, and nothing else does but a request sent
        # on one of its keep-alive connections that it had not read yet when it was killed.
        assert 0 < lost <= len(load.failures)
        assert set(load.failed_on) == {victim}
        assert len(load.failures) <= 8  # at most one per client connection
        assert replaced < 1.0
        assert victim not in {text.split()[1] for text in load.ok[served:]}
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("workers", [2, 1])
def test_max_requests_recycles_workers_without_a_failed_request(project: Path, workers: int) -> None:
    server = start(project, workers, "--max-requests", "25", "--max-requests-jitter", "10")
    try:
        with Load(server.url, path="/slow?0.02") as load:
            wait_until(lambda: sum("recycled" in line for line in server.read_log()) >= 4, 30)
        pids = {text.split()[1] for text in load.ok}
        print(f"max_requests with {workers} worker(s): {len(pids)} worker pids served {len(load.ok)} requests, "
              f"{len(load.failures)} failed, {load.refused} refused")  # fmt: skip
        assert load.failures == [] and load.refused == 0
        assert len(pids) > workers  # replacements served
    finally:
        assert server.stop() == 0


def test_workers_do_not_outlive_a_killed_supervisor(project: Path) -> None:
    server = start(project)
    pids = {int(p) for p in distinct_pids(server.url)}
    port = int(server.url.rsplit(":", 1)[1])
    server.proc.kill()
    server.proc.wait(5)

    def all_gone() -> bool:
        gone = True
        for pid in pids:
            try:
                os.kill(pid, 0)
                gone = False
            except ProcessLookupError:
                pass
        return gone

    wait_until(all_gone, timeout=15)
    assert not port_in_use("127.0.0.1", port)  # nothing holds the listening socket any more


def test_startup_failure_in_every_worker_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(
        "async def app(scope, receive, send):\n"
        "    await receive()\n"
        "    await send({'type': 'lifespan.startup.failed', 'message': 'no database'})\n"
    )
    from helpers.process import run_cli

    result = run_cli(["pounce", "serve", "--app", "failing:app", "--port", "0", "--workers", "2"], tmp_path)
    assert result.returncode == 3
    assert "no database" in result.stderr
