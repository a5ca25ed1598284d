"""The signal bus: app.emit → /_chirp/live, in process and across worker processes via Redis."""

from __future__ import annotations

import json
import os
import statistics
import textwrap
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest

from chirp import App, AppConfig, ConfigurationError, Request, Response
from chirp.realtime import InProcessBackplane, RedisBackplane, validate_topic
from helpers.asgi_apps import plain_asgi
from helpers.process import ServerProcess, spawn
from helpers.server import serve
from helpers.services import (
    REDIS_PORT,
    REDIS_URL,
    free_port,
    redis_restarts,
    require,
    start_redis,
    stop_redis,
    wait_for,
)
from helpers.sse import events


@pytest.fixture
def redis() -> str:
    require("Redis", REDIS_PORT)
    return REDIS_URL


def live_app(**app_kwargs: object) -> App:
    app = App(**app_kwargs)  # type: ignore[arg-type]

    async def worker_header(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers["x-worker-pid"] = str(os.getpid())
        return response

    app.add_middleware(worker_header)

    @app.route("/emit/{topic}", methods=["POST"])
    async def emit_async(topic: str, request: Request) -> dict[str, object]:
        app.emit(topic, await request.json())
        return {"ok": True}

    @app.route("/emit-sync/{topic}", methods=["POST"])
    def emit_sync(topic: str) -> dict[str, object]:  # runs in the thread pool
        app.emit(topic, {"from": "sync"})
        return {"ok": True}

    return app


# -- validation and wiring --------------------------------------------------------------------


def test_topic_names() -> None:
    for good in ("a", "news", "prices.EUR-USD", "user:42", "x_1"):
        assert validate_topic(good) == good
    for bad in ("", "-lead", "with space", "a*", "a,b", "x" * 129, "é", None, 5):
        with pytest.raises(ValueError, match=r"invalid topic"):
            validate_topic(bad)


def test_emit_errors() -> None:
    app = App()
    with pytest.raises(ValueError, match=r"invalid topic"):
        app.emit("bad topic", 1)
    with pytest.raises(TypeError, match=r"JSON-serialisable"):
        app.emit("ok", {"a": object()})
    with pytest.raises(RuntimeError, match=r"not running"):
        app.emit("ok", {"a": 1})


def test_backplane_selection_and_errors() -> None:
    assert isinstance(App().backplane, InProcessBackplane)
    redis_app = App(AppConfig(redis_url="redis://127.0.0.1:6379/0"))
    assert isinstance(redis_app.backplane, RedisBackplane) and not redis_app.backplane.in_process
    explicit = InProcessBackplane()
    assert App(AppConfig(redis_url="redis://h"), backplane=explicit).backplane is explicit
    with pytest.raises(ConfigurationError, match=r"redis_url='http://h' is invalid: use redis://"):
        App(AppConfig(redis_url="http://h"))
    with pytest.raises(ConfigurationError, match=r"redis_url='http://u:\*\*\*@h'") as info:
        RedisBackplane("http://u:secret@h")
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigurationError, match=r"RedisBackplane.connect_timeout"):
        RedisBackplane("redis://h", connect_timeout=0)
    with pytest.raises(ConfigurationError, match=r"RedisBackplane.max_pending"):
        RedisBackplane("redis://h", max_pending=0)
    with pytest.raises(TypeError, match=r"takes a Backplane"):
        App(backplane=object())  # type: ignore[arg-type]


def test_uses_realtime_drives_the_worker_rule() -> None:
    # staging: no development server, so the configured 4 workers are what would run
    plain = App(AppConfig(workers=4))
    plain.freeze()
    assert not plain.uses_realtime and "/_chirp/live" in {r.path for r in plain.router.routes}
    assert "workers.single_with_state" not in {f.rule_id for f in plain.check(env="staging").findings}

    emitting = live_app(config=AppConfig(workers=4))
    assert emitting.uses_realtime
    assert "workers.single_with_state" in {f.rule_id for f in emitting.check(env="staging").findings}

    shared = live_app(config=AppConfig(workers=4, redis_url="redis://127.0.0.1:6379/0"))
    assert shared.uses_realtime and not shared.backplane.in_process
    assert "workers.single_with_state" not in {f.rule_id for f in shared.check(env="staging").findings}


# -- the endpoint, in process -----------------------------------------------------------------


def test_live_endpoint_delivers_emits_from_async_and_sync_handlers() -> None:
    app = live_app()
    with (
        serve(app) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as c,
        c.stream("GET", "/_chirp/live?topics=a,b") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.headers["x-worker-pid"] == str(os.getpid())  # the middleware ran
        it = events(r)
        with httpx.Client(base_url=srv.url) as poster:
            poster.post("/emit/c", json={"skip": True}).raise_for_status()  # nobody follows c
            poster.post("/emit/a", json={"n": 1, "s": "line\nbreak"}).raise_for_status()
            poster.post("/emit-sync/b").raise_for_status()
        first, second = next(it), next(it)
    assert (first.event, json.loads(first.data or "")) == ("a", {"n": 1, "s": "line\nbreak"})
    assert (second.event, json.loads(second.data or "")) == ("b", {"from": "sync"})


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "pass the topics to follow"),
        ("?topics=", "pass the topics to follow"),
        ("?topics=ok,bad%20one", "invalid topic 'bad one'"),
        ("?topics=" + ",".join(f"t{i}" for i in range(33)), "at most 32 topics"),
    ],
)
def test_live_endpoint_rejects_bad_topics(query: str, message: str) -> None:
    with serve(App()) as srv:
        r = httpx.get(srv.url + "/_chirp/live" + query)
    assert r.status_code == 400 and message in r.text


def test_live_endpoint_methods_and_startup() -> None:
    with serve(App()) as srv:
        r = httpx.post(srv.url + "/_chirp/live?topics=a")
        assert r.status_code == 405 and "GET" in r.headers["allow"]
        head = httpx.head(srv.url + "/_chirp/live?topics=a")
        assert head.status_code == 200 and head.content == b""
    with serve(plain_asgi(App()), lifespan="off") as srv:
        r = httpx.get(srv.url + "/_chirp/live?topics=a")
        assert r.status_code == 503 and "not completed startup" in r.text


def test_user_route_on_live_path_wins() -> None:
    app = App()

    @app.route("/_chirp/live")
    def mine() -> str:
        return "mine"

    with serve(app) as srv:
        assert httpx.get(srv.url + "/_chirp/live?topics=a").text == "mine"


def test_slow_subscriber_is_dropped_instead_of_growing_memory() -> None:
    async def scenario() -> None:
        bus = InProcessBackplane()
        await bus.start()
        sub = await bus.subscribe(["t"], buffer=3)
        for i in range(5):
            bus.emit("t", i)
        assert sub.overflowed and sub.closed and "t" not in bus.topics
        assert [json.loads(p) async for _, p in sub] == [0, 1, 2]  # what was buffered, then the end
        with pytest.raises(ValueError, match=r"at least one topic"):
            await bus.subscribe([])
        with pytest.raises(ValueError, match=r"buffer"):
            await bus.subscribe(["t"], buffer=0)
        await bus.close()

    anyio.run(scenario)


def test_emit_from_another_thread_is_delivered_in_order() -> None:
    async def scenario() -> None:
        bus = InProcessBackplane()
        await bus.start()
        sub = await bus.subscribe(["t"])
        thread = threading.Thread(target=lambda: [bus.emit("t", i) for i in range(100)])
        thread.start()
        got = []
        with anyio.fail_after(5):
            async for _, payload in sub:
                got.append(json.loads(payload))
                if len(got) == 100:
                    break
        thread.join()
        assert got == list(range(100))
        await bus.close()

    anyio.run(scenario)


def test_unreachable_redis_fails_startup_with_the_url() -> None:
    port = free_port()
    app = App(backplane=RedisBackplane(f"redis://:pw@127.0.0.1:{port}/0", connect_timeout=0.5))
    with pytest.raises(Exception, match=rf"could not reach redis://:\*\*\*@127.0.0.1:{port}/0"), serve(app):
        pass


# -- Redis: across worker processes -----------------------------------------------------------

WORKER_APP = textwrap.dedent(
    """
    import os, time
    from chirp import App, AppConfig, Request

    app = App(AppConfig(redis_url=os.environ["TEST_REDIS_URL"], workers=2))

    @app.route("/emit/{topic}", methods=["POST"])
    async def emit(topic: str, request: Request):
        count = int(request.query.get("n", "1"))
        for seq in range(count):
            app.emit(topic, {"seq": seq, "t": time.time(), "worker": os.getpid()})
            if count > 1:
                import anyio
                await anyio.sleep(0.005)
        return {"worker": os.getpid()}

    async def tag(request, call_next):
        response = await call_next(request)
        response.headers["x-worker-pid"] = str(os.getpid())
        return response

    app.add_middleware(tag)
    """
)


class Listener(threading.Thread):
    """One SSE client in a thread: records (receive time, event) pairs."""

    def __init__(self, url: str, topics: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.topics = topics
        self.pid: str | None = None
        self.ready = threading.Event()
        self.received: list[tuple[float, dict[str, object]]] = []
        self.error: BaseException | None = None
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=60))

    def run(self) -> None:
        try:
            with self.client.stream("GET", f"{self.url}/_chirp/live?topics={self.topics}") as r:
                self.pid = r.headers["x-worker-pid"]
                self.ready.set()
                for frame in events(r):
                    self.received.append((time.time(), json.loads(frame.data or "")))
        except (httpx.HTTPError, RuntimeError) as exc:  # closed by the test
            self.error = exc
        finally:
            self.ready.set()

    def close(self) -> None:
        self.client.close()


def start_workers(project: Path, redis_url: str) -> ServerProcess:
    (project / "liveapp.py").write_text(WORKER_APP)
    return spawn(["pounce", "serve", "--app", "liveapp:app", "--port", "0", "--workers", "2", "--no-access-log"],
                 project, {"TEST_REDIS_URL": redis_url}, timeout=30)  # fmt: skip


def listeners_on_both_workers(url: str, topics: str, per_worker: int = 2) -> list[Listener]:
    """Connect SSE clients until each worker holds at least `per_worker` of them."""
    kept: list[Listener] = []
    by_pid: dict[str, int] = {}
    for _ in range(60):
        listener = Listener(url, topics)
        listener.start()
        assert listener.ready.wait(10) and listener.pid, listener.error
        if by_pid.get(listener.pid, 0) < per_worker:
            by_pid[listener.pid] = by_pid.get(listener.pid, 0) + 1
            kept.append(listener)
        else:
            listener.close()
        if len(by_pid) == 2 and all(n >= per_worker for n in by_pid.values()):
            return kept
    raise AssertionError(f"could not reach both workers: {by_pid}")


def emit_from_each_worker(url: str, topic: str, n: int) -> set[str]:
    pids: set[str] = set()
    for _ in range(60):
        with httpx.Client() as c:  # a fresh connection each time spreads over workers
            r = c.post(f"{url}/emit/{topic}?n={n}")
            r.raise_for_status()
            pids.add(r.headers["x-worker-pid"])
        if len(pids) == 2:
            return pids
    raise AssertionError("emits never reached both workers")


def test_fan_out_across_two_workers_through_redis(tmp_path: Path, redis: str) -> None:
    server = start_workers(tmp_path, redis)
    listeners: list[Listener] = []
    try:
        listeners = listeners_on_both_workers(server.url, "ticks,other")
        assert len({listener.pid for listener in listeners}) == 2
        emit_pids = emit_from_each_worker(server.url, "other", 1)
        # every client got the emit made on its own worker and the one made on the other
        wanted = {int(p) for p in emit_pids}
        wait_for(
            lambda: all({e["worker"] for _, e in lst.received} >= wanted for lst in listeners), timeout=10
        )
        before = {id(lst): len(lst.received) for lst in listeners}
        n = 200
        with httpx.Client() as c:
            c.post(f"{server.url}/emit/ticks?n={n}", timeout=30).raise_for_status()
        wait_for(lambda: all(len(lst.received) - before[id(lst)] >= n for lst in listeners), timeout=20)
        latencies = []
        for listener in listeners:
            batch = listener.received[before[id(listener)] :]
            assert [e["seq"] for _, e in batch] == list(range(n))  # complete and in order
            latencies += [(at - float(e["t"])) * 1000 for at, e in batch]  # type: ignore[arg-type]
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"\nemit→receive across 2 workers via Redis: {len(latencies)} deliveries, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms")  # fmt: skip
        assert p99 < 50, f"p99 emit→receive latency {p99:.1f} ms exceeds 50 ms"
    finally:
        for listener in listeners:
            listener.close()
        assert server.stop() == 0


def test_redis_restart_reconnects_and_resubscribes(redis: str) -> None:
    backplane = RedisBackplane(redis, max_backoff=0.5)
    app = live_app(backplane=backplane)
    with (
        redis_restarts(),
        serve(app) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as c,
        c.stream("GET", "/_chirp/live?topics=r") as r,
    ):
        it = events(r)
        c.post("/emit/r", json={"phase": "before"}).raise_for_status()
        assert json.loads(next(it).data or "") == {"phase": "before"}
        stop_redis()
        wait_for(lambda: not backplane.connected, timeout=10)
        start_redis()
        wait_for(lambda: backplane.connected and backplane.reconnects >= 1, timeout=20)
        # the same SSE connection, resubscribed on the new Redis, gets new events
        c.post("/emit/r", json={"phase": "after"}).raise_for_status()
        got = [json.loads(f.data or "") for f in _take_until(it, {"phase": "after"})]
    assert got[-1] == {"phase": "after"}


def _take_until(it, wanted):  # type: ignore[no-untyped-def]
    frames = []
    for frame in it:
        frames.append(frame)
        if json.loads(frame.data or "") == wanted:
            return frames
    raise AssertionError(f"stream ended before {wanted}")


def test_redis_backplane_probe_and_subscription_cleanup(redis: str) -> None:
    async def scenario() -> None:
        bus = RedisBackplane(redis)
        with pytest.raises(ConnectionError, match=r"not started"):
            await bus.probe()
        await bus.start()
        try:
            assert await bus.probe() is True
            sub = await bus.subscribe(["cleanup"])
            bus.emit("cleanup", {"x": 1})
            with anyio.fail_after(5):
                topic, payload = await sub.__anext__()
            assert (topic, json.loads(payload)) == ("cleanup", {"x": 1})
            sub.close()
            assert "cleanup" not in bus.topics
        finally:
            await bus.close()
        assert not bus.connected and not bus.started

    anyio.run(scenario)
