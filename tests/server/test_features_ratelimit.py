"""Rate limiting: exact token buckets, one budget per client across worker processes and Redis."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest

from helpers.asgi_apps import lifespan_ok
from helpers.feature_apps import write_feature_app
from helpers.process import ServerProcess, spawn
from helpers.server import serve
from pounce.features.ratelimit import REDIS_KEY_PREFIX, LocalBuckets, RedisBuckets, SharedTable

REDIS_URL = "redis://127.0.0.1:6379/0"


async def ok_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        await lifespan_ok(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379")


def test_local_bucket_bursts_then_refills_exactly() -> None:
    buckets = LocalBuckets(rate=2.0, burst=3, max_clients=10)
    assert [buckets.take_now("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take_now("a", 100.0) == pytest.approx(0.5)  # one token in half a second
    assert buckets.take_now("a", 100.5) == 0.0  # exactly one token refilled
    assert buckets.take_now("a", 100.5) > 0
    assert buckets.take_now("b", 100.5) == 0.0  # another client has its own budget
    assert [buckets.take_now("a", 110.0) for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refill caps at burst


def test_local_buckets_forget_the_least_recently_seen_client() -> None:
    buckets = LocalBuckets(rate=0.001, burst=1, max_clients=2)
    buckets.take_now("a", 1.0)
    buckets.take_now("b", 2.0)
    buckets.take_now("a", 3.0)  # a is fresh again, b is now the oldest
    buckets.take_now("c", 4.0)
    assert set(buckets.buckets) == {"a", "c"}
    assert len(buckets.buckets) == 2


def test_shared_table_is_exact_and_shared_between_handles(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    SharedTable.create(path, 100)
    one, two = SharedTable(path, 1.0, 2), SharedTable(path, 1.0, 2)
    assert one.take_now("10.0.0.1", 50.0) == 0.0
    assert two.take_now("10.0.0.1", 50.0) == 0.0  # the same bucket through another mapping
    assert one.take_now("10.0.0.1", 50.0) == pytest.approx(1.0)
    assert two.take_now("10.0.0.1", 51.0) == 0.0
    assert one.take_now("10.0.0.1", 51.0) > 0


def test_shared_table_memory_is_bounded_and_evicts_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    SharedTable.create(path, 8)  # one set of eight slots
    size = path.stat().st_size
    table = SharedTable(path, 0.001, 1)
    for i in range(50):
        table.take_now(f"10.1.0.{i}", float(i))
    assert path.stat().st_size == size
    assert table.take_now("10.1.0.49", 60.0) > 0  # recent client still tracked (and empty)
    assert table.take_now("10.1.0.0", 61.0) == 0.0  # long evicted: starts with a full bucket


def test_a_corrupt_table_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError, match="not a pounce rate-limit table"):
        SharedTable(path, 1.0, 1)


def test_server_answers_429_with_retry_after_and_exempts_probes() -> None:
    settings = {"rate_limit_enabled": True, "rate_limit_requests_per_second": 0.5, "rate_limit_burst": 2}
    with serve(ok_app, metrics_enabled=True, **settings) as srv, httpx.Client(base_url=srv.url) as client:
        assert [client.get("/").status_code for _ in range(2)] == [200, 200]
        refused = client.get("/")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert refused.text == "429 Too Many Requests\n"
        assert {client.get(p).status_code for p in ("/health", "/ready") for _ in range(5)} == {200}
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "pounce_rate_limited_total 1.0" in metrics.text


def test_limit_follows_the_proxy_resolved_client() -> None:
    settings = {"rate_limit_enabled": True, "rate_limit_requests_per_second": 0.01, "rate_limit_burst": 1}
    with (
        serve(ok_app, trusted_hosts=("127.0.0.1",), **settings) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        assert client.get("/", headers={"x-forwarded-for": "203.0.113.1"}).status_code == 200
        assert client.get("/", headers={"x-forwarded-for": "203.0.113.1"}).status_code == 429
        assert client.get("/", headers={"x-forwarded-for": "203.0.113.2"}).status_code == 200


# -- across worker processes -----------------------------------------------------------------
def pinned_clients(url: str, source: str, count: int = 2, tries: int = 200) -> list[tuple[httpx.Client, str]]:
    """Keep-alive connections from `source`, each held by a different worker process."""
    found: dict[str, httpx.Client] = {}
    for _ in range(tries):
        client = httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=source))
        pid = client.get("/health").text.split()[1]  # probes are exempt: no budget spent
        if pid in found:
            client.close()
        else:
            found[pid] = client
        if len(found) == count:
            return [(c, pid) for pid, c in found.items()]
    raise AssertionError("could not reach two distinct workers")


def start_workers(project: Path, *extra: str) -> ServerProcess:
    app = write_feature_app(project)
    return spawn(["pounce", "serve", "--app", app, "--port", "0", "--workers", "2", "--no-access-log",
                  "--rate-limit", *extra], project)  # fmt: skip


def spend_alternating(clients: list[tuple[httpx.Client, str]], requests: int) -> dict[str, list[int]]:
    statuses: dict[str, list[int]] = {pid: [] for _, pid in clients}
    for i in range(requests):
        client, pid = clients[i % len(clients)]
        response = client.get("/")
        if response.status_code == 200:
            assert response.text.split()[1] == pid  # the pinned connection really is that worker
        statuses[pid].append(response.status_code)
    return statuses


@pytest.mark.parametrize("backend", ["shared-table", "redis"])
def test_two_workers_share_one_budget_per_client(tmp_path: Path, backend: str) -> None:
    source = "127.0.0.2" if backend == "shared-table" else "127.0.0.3"
    extra = ["--rate-limit-rps", "0.001", "--rate-limit-burst", "6"]
    if backend == "redis":
        if not redis_available():
            pytest.skip("no Redis on 127.0.0.1:6379")
        import redis

        redis.Redis.from_url(REDIS_URL).delete(REDIS_KEY_PREFIX + source)
        extra += ["--redis-url", REDIS_URL]
    server = start_workers(tmp_path, *extra)
    try:
        clients = pinned_clients(server.url, source)
        statuses = spend_alternating(clients, 20)
        allowed = sum(s.count(200) for s in statuses.values())
        assert allowed == 6  # not 6 per worker
        assert all(s.count(200) == 3 for s in statuses.values())  # both workers spent the one budget
        assert all(code in (200, 429) for s in statuses.values() for code in s)
        for client, _ in clients:
            client.close()
    finally:
        assert server.stop() == 0


def test_shared_budget_refills_across_workers(tmp_path: Path) -> None:
    server = start_workers(tmp_path, "--rate-limit-rps", "4", "--rate-limit-burst", "2")
    try:
        clients = pinned_clients(server.url, "127.0.0.4")
        assert sum(s.count(200) for s in spend_alternating(clients, 4).values()) == 2
        time.sleep(0.3)  # 1.2 tokens refilled: exactly one more request
        assert sum(s.count(200) for s in spend_alternating(clients, 2).values()) == 1
        for client, _ in clients:
            client.close()
    finally:
        assert server.stop() == 0


@needs_redis
async def test_redis_bucket_bursts_then_refills() -> None:
    import redis

    key = "redis-refill-test"
    redis.Redis.from_url(REDIS_URL).delete(REDIS_KEY_PREFIX + key)
    buckets = RedisBuckets(REDIS_URL, rate=5.0, burst=3)
    try:
        assert [await buckets.take(key) for _ in range(3)] == [0.0, 0.0, 0.0]
        retry = await buckets.take(key)
        assert 0.15 < retry <= 0.2
        await anyio.sleep(0.25)
        assert await buckets.take(key) == 0.0
        assert await buckets.take(key) > 0
        ttl = redis.Redis.from_url(REDIS_URL).pttl(REDIS_KEY_PREFIX + key)
        assert 0 < ttl <= 1600  # idle buckets expire: memory stays bounded
    finally:
        await buckets.aclose()


async def test_unreachable_redis_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    buckets = RedisBuckets("redis://127.0.0.1:1/0", rate=1.0, burst=1)
    try:
        assert [await buckets.take("x") for _ in range(3)] == [0.0, 0.0, 0.0]
    finally:
        await buckets.aclose()
    assert sum("cannot reach Redis" in r.getMessage() for r in caplog.records) == 1
