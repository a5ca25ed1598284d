"""Per-client rate limiting: a token bucket per resolved client IP.

Each client may burst `rate_limit_burst` requests and then gets
`rate_limit_requests_per_second` more per second; beyond that it is answered `429 Too Many
Requests` with `Retry-After`. The client is `scope["client"]`, which pounce has already
resolved through `trusted_hosts` (so behind a trusted proxy it is the forwarded client, and
the access log, which shows the raw peer, may disagree: on purpose). Probe paths and the
metrics path are never limited.

The budget belongs to the client across the whole server, not to one worker process:

- one process: an in-memory LRU of buckets;
- several workers: a fixed-size table in a memory-mapped file the supervisor creates
  before forking, guarded by an `flock` (released by the kernel if a worker dies);
- `redis_url` set: a Redis hash per client, updated by one Lua script so the bucket is
  atomic across workers *and* machines, timed by the Redis server clock.

Tracked clients are bounded by `rate_limit_max_clients` (least recently seen evicted);
Redis keys expire once a bucket would be full again.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Protocol

import anyio

from pounce.asgi import ASGIApp, Receive, Scope, Send
from pounce.config import ServerConfig
from pounce.features.shared import mark_refused, probe_paths, send_plain, shared_dir

logger = logging.getLogger("pounce.error")

REDIS_KEY_PREFIX = "pounce:ratelimit:"


def _refill(tokens: float, elapsed: float, rate: float, burst: int) -> float:
    return min(float(burst), tokens + max(0.0, elapsed) * rate)


def _verdict(tokens: float, rate: float) -> tuple[float, float]:
    """`(tokens left, retry after seconds)`: retry after 0 means the request may pass."""
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class BucketStore(Protocol):
    def try_take(self, key: str) -> float | None:
        """`take()` answered without waiting, or None when only `take()` can answer."""

    async def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket; 0.0 if allowed, else seconds until one is due."""

    async def aclose(self) -> None: ...


class LocalBuckets:
    """Buckets of one process, least recently seen evicted beyond `max_clients`."""

    def __init__(self, rate: float, burst: int, max_clients: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take_now(self, key: str, now: float) -> float:
        state = self.buckets.pop(key, None)
        tokens = (
            float(self.burst) if state is None else _refill(state[0], now - state[1], self.rate, self.burst)
        )
        tokens, retry = _verdict(tokens, self.rate)
        self.buckets[key] = (tokens, now)
        if len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return retry

    def try_take(self, key: str) -> float:
        return self.take_now(key, time.monotonic())

    async def take(self, key: str) -> float:
        return self.try_take(key)

    async def aclose(self) -> None:
        return None


_MAGIC = b"PNCRL001"
_HEADER = struct.Struct("<8sII")  # magic, number of sets, ways per set
_SLOT = struct.Struct("<Qdd")  # key digest (0 = empty), tokens, last seen (CLOCK_MONOTONIC)
_WAYS = 8
_LEASE_SECONDS = 0.05


class SharedTable:
    """Token buckets in a memory-mapped file shared by the worker processes of one server.

    The table is set-associative: a client hashes to one set of 8 slots and, when the set
    is full, the least recently seen client of that set is evicted; memory is fixed at
    about 24 bytes per tracked client. `CLOCK_MONOTONIC` is the same for every process of
    the machine, so the buckets refill identically whichever worker looks.
    """

    def __init__(self, path: Path, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.fd = os.open(path, os.O_RDWR)
        size = os.fstat(self.fd).st_size
        self.map = mmap.mmap(self.fd, size)
        magic, self.sets, self.ways = _HEADER.unpack_from(self.map, 0)
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a pounce rate-limit table")
        # A worker takes tokens from the shared bucket in small leases (1 % of the burst,
        # at least 1) that it spends locally for a moment: fewer locks, and never more
        # tokens than the bucket held, since unspent leased tokens simply lapse.
        self.lease = max(1, burst // 100)
        self.leases: dict[str, tuple[int, float]] = {}

    @staticmethod
    def create(path: Path, max_clients: int) -> None:
        """Create the (zeroed) table file for `max_clients` clients, if it does not exist."""
        sets = max(1, math.ceil(max_clients / _WAYS))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size == 0:
                os.ftruncate(fd, _HEADER.size + sets * _WAYS * _SLOT.size)
                os.pwrite(fd, _HEADER.pack(_MAGIC, sets, _WAYS), 0)
        finally:
            os.close(fd)

    @staticmethod
    def digest(key: str) -> int:
        value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        return value or 1

    def take_now(self, key: str, now: float, wait: bool = True) -> float | None:
        """Take a token for `key`: 0.0, or the seconds to wait for one.

        Only the client's set of slots is locked (a POSIX record lock, released by the
        kernel if a worker dies), so different clients never contend. With `wait=False`
        a set locked by another worker returns None instead of blocking the event loop.
        """
        digest = self.digest(key)
        base = _HEADER.size + (digest % self.sets) * self.ways * _SLOT.size
        length = self.ways * _SLOT.size
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB, length, base)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return None
            raise
        try:
            victim = base
            oldest = math.inf
            found = False
            for i in range(self.ways):
                offset = base + i * _SLOT.size
                slot_key, tokens, seen = _SLOT.unpack_from(self.map, offset)
                if slot_key == digest:
                    victim, found = offset, True
                    break
                if slot_key == 0:
                    if oldest > -math.inf:
                        victim, oldest = offset, -math.inf
                elif seen < oldest:
                    victim, oldest = offset, seen
            tokens = _refill(tokens, now - seen, self.rate, self.burst) if found else float(self.burst)
            tokens, retry = _verdict(tokens, self.rate)
            if retry == 0.0 and self.lease > 1:
                extra = min(self.lease - 1, int(tokens))
                if extra:
                    tokens -= extra
                    self.leases[key] = (extra, now + _LEASE_SECONDS)
            _SLOT.pack_into(self.map, victim, digest, tokens, now)
            return retry
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, length, base)

    def try_take(self, key: str) -> float | None:
        lease = self.leases.get(key)
        if lease is not None:
            left, until = lease
            if time.monotonic() < until:
                if left > 1:
                    self.leases[key] = (left - 1, until)
                else:
                    del self.leases[key]
                return 0.0
            del self.leases[key]
        if len(self.leases) > 4096:  # leases of clients gone quiet
            self.leases.clear()
        return self.take_now(key, time.monotonic(), wait=False)

    async def take(self, key: str) -> float:
        while True:
            retry = self.try_take(key)
            if retry is not None:
                return retry
            await anyio.sleep(0)  # another worker holds this client's set: let other requests run

    async def aclose(self) -> None:
        self.map.close()
        os.close(self.fd)


# KEYS[1] bucket key; ARGV: rate, burst. Returns "0" when allowed, else the seconds to wait.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
end
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  retry = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', retry)
"""


class RedisBuckets:
    """Buckets in Redis: one budget per client across every worker and machine.

    If Redis cannot be reached the request is let through (failing open) and a warning is
    logged at most every 30 seconds: an outage of the limiter must not become an outage
    of the site.
    """

    def __init__(self, url: str, rate: float, burst: int) -> None:
        import redis.asyncio as redis_asyncio

        self.client: Any = redis_asyncio.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.script = self.client.register_script(_LUA)
        self.rate = rate
        self.burst = burst
        self._warned = 0.0

    def try_take(self, key: str) -> None:
        return None  # every answer comes from the Redis server

    async def take(self, key: str) -> float:
        try:
            reply = await self.script(keys=[REDIS_KEY_PREFIX + key], args=[repr(self.rate), str(self.burst)])
        except Exception as exc:  # any Redis or network failure
            now = time.monotonic()
            if now - self._warned > 30:
                self._warned = now
                logger.warning("rate limiter cannot reach Redis, letting requests through: %s", exc)
            return 0.0
        return float(reply.decode() if isinstance(reply, bytes) else reply)

    async def aclose(self) -> None:
        await self.client.aclose()


class RateLimit:
    """ASGI wrapper answering 429 once a client's bucket is empty."""

    def __init__(self, app: ASGIApp, store: BucketStore, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.store = store
        self.exempt = exempt

    @classmethod
    def from_config(cls, app: ASGIApp, config: ServerConfig) -> RateLimit:
        rate, burst = config.rate_limit_requests_per_second, config.rate_limit_burst
        store: BucketStore
        directory = shared_dir()
        if config.redis_url is not None:
            store = RedisBuckets(config.redis_url, rate, burst)
        elif directory is not None:
            path = directory / "ratelimit.bin"
            SharedTable.create(path, config.rate_limit_max_clients)
            store = SharedTable(path, rate, burst)
        else:
            store = LocalBuckets(rate, burst, config.rate_limit_max_clients)
        return cls(app, store, probe_paths(config))

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app's own awaitable when a token is there at once (the common case); otherwise a
        coroutine that waits for the store or refuses. Not a coroutine itself, so an allowed
        request passing through adds no frame of its own."""
        if scope["type"] != "http" or scope["path"] in self.exempt:
            return self.app(scope, receive, send)
        client = scope.get("client")
        key = client[0] if client else "-"
        retry = self.store.try_take(key)
        if retry is None:
            return self._waited(key, scope, receive, send)
        if retry <= 0:
            return self.app(scope, receive, send)
        return self._refuse(retry, scope, send)

    async def _waited(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The store must be asked (another process's table, Redis) before the verdict."""
        retry = await self.store.take(key)
        if retry <= 0:
            await self.app(scope, receive, send)
        else:
            await self._refuse(retry, scope, send)

    async def _refuse(self, retry: float, scope: Scope, send: Send) -> None:
        mark_refused(scope, "rate_limit")
        seconds = max(1, math.ceil(retry))
        await send_plain(send, 429, "429 Too Many Requests\n", [(b"retry-after", str(seconds).encode())])
