"""The signal bus: `app.emit(topic, data)` → every `/_chirp/live` client of that topic.

A backplane carries emitted events between processes. Each process keeps its own local
subscribers (one per SSE connection); the backplane decides how an event reaches the
local subscribers of *every* process:

* `InProcessBackplane` (the default) delivers straight to this process's subscribers: right
  for one worker, wrong for several (an event emitted in one worker never reaches clients
  of another — the contract rule `workers.single_with_state` reports it).
* `RedisBackplane(url)` publishes to Redis pub/sub; every worker, on every machine,
  subscribes to the topics its clients asked for, and resubscribes after a reconnect.

Payloads are JSON: `emit()` serialises once, so what works with the in-process bus works
unchanged with Redis.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import anyio

from chirp.errors import ConfigurationError
from chirp.json_values import dumps

logger = logging.getLogger("chirp.realtime")

TOPIC_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
TOPIC_RULE = "1-128 characters: letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
DEFAULT_BUFFER = 1000


def validate_topic(topic: object) -> str:
    """`topic` if it is a valid topic name; `ValueError` saying what is allowed otherwise."""
    if not isinstance(topic, str) or not TOPIC_RE.fullmatch(topic):
        raise ValueError(f"invalid topic {topic!r}: use {TOPIC_RULE}")
    return topic


def encode_payload(data: Any) -> str:
    try:
        return dumps(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"emit() data must be JSON-serialisable: {exc}") from None


class Subscription:
    """One listener's view of the bus: iterate it for `(topic, payload_json)` pairs.

    A subscriber that falls `buffer` events behind is dropped (its iteration ends) rather
    than letting one slow client grow memory without bound; SSE clients then reconnect.
    """

    def __init__(self, fanout: LocalFanout, topics: tuple[str, ...], buffer: int) -> None:
        self.topics = topics
        self.overflowed = False
        self._fanout = fanout
        self._send, self._receive = anyio.create_memory_object_stream[tuple[str, str]](buffer)
        self.closed = False

    def offer(self, topic: str, payload: str) -> None:
        try:
            self._send.send_nowait((topic, payload))
        except anyio.WouldBlock:
            self.overflowed = True
            logger.warning("a live subscriber of %s fell %d events behind; dropping it",
                           ",".join(self.topics), self._send.statistics().max_buffer_size)  # fmt: skip
            self.close()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._send.close()
        self._fanout.remove(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[str, str]:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        self._receive.close()


@runtime_checkable
class Backplane(Protocol):
    """What `App` needs from a signal bus."""

    #: True when events never leave this process (the contract engine reads this).
    in_process: bool

    @property
    def started(self) -> bool: ...

    async def start(self) -> None:
        """Connect; called from the app's lifespan startup, in each worker."""

    async def close(self) -> None:
        """Disconnect; called from the app's lifespan shutdown."""

    def emit(self, topic: str, data: Any) -> None:
        """Publish from sync or async code, from any thread; never blocks."""

    async def subscribe(self, topics: Iterable[str], buffer: int = DEFAULT_BUFFER) -> Subscription:
        """Listen to `topics`; events emitted after this returns are delivered."""


class LocalFanout:
    """Local subscribers and the thread-safe `emit()` shared by the built-in backplanes."""

    in_process = True

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None and not self._loop.is_closed()

    @property
    def topics(self) -> set[str]:
        """Topics with at least one local subscriber."""
        return set(self._subscribers)

    def emit(self, topic: str, data: Any) -> None:
        validate_topic(topic)
        payload = encode_payload(data)
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError(
                "app.emit() was called while the app is not running; emit from handlers, "
                "lifecycle hooks or background tasks once lifespan startup has run"
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._emit_local(topic, payload)
        else:  # a sync handler in the thread pool, or any other thread
            loop.call_soon_threadsafe(self._emit_local, topic, payload)

    def _emit_local(self, topic: str, payload: str) -> None:
        raise NotImplementedError

    def deliver(self, topic: str, payload: str) -> None:
        """Hand one event to every local subscriber of `topic`."""
        for subscription in list(self._subscribers.get(topic, ())):
            subscription.offer(topic, payload)

    def _register(self, topics: Iterable[str], buffer: int) -> tuple[Subscription, list[str]]:
        wanted = tuple(dict.fromkeys(validate_topic(t) for t in topics))
        if not wanted:
            raise ValueError("subscribe() needs at least one topic")
        if buffer < 1:
            raise ValueError(f"subscription buffer={buffer!r} must be at least 1")
        subscription = Subscription(self, wanted, buffer)
        new = [t for t in wanted if t not in self._subscribers]
        for topic in wanted:
            self._subscribers.setdefault(topic, set()).add(subscription)
        return subscription, new

    def remove(self, subscription: Subscription) -> None:
        gone = []
        for topic in subscription.topics:
            members = self._subscribers.get(topic)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._subscribers[topic]
                    gone.append(topic)
        if gone:
            self._topics_unused(gone)

    def _topics_unused(self, topics: list[str]) -> None:
        """Hook: the last local subscriber of `topics` left."""

    def _close_subscribers(self) -> None:
        for members in list(self._subscribers.values()):
            for subscription in list(members):
                subscription.close()


class InProcessBackplane(LocalFanout):
    """Events stay inside this process: the default, for one worker."""

    in_process = True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        self._close_subscribers()
        self._loop = None

    def _emit_local(self, topic: str, payload: str) -> None:
        self.deliver(topic, payload)

    async def subscribe(self, topics: Iterable[str], buffer: int = DEFAULT_BUFFER) -> Subscription:
        subscription, _ = self._register(topics, buffer)
        return subscription

    def __repr__(self) -> str:
        return "InProcessBackplane()"


def _mask(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc[-1]}").geturl()


class RedisBackplane(LocalFanout):
    """Fan-out across workers and machines through Redis pub/sub (redis-py asyncio).

    Each worker keeps one pub/sub connection subscribed to the topics its clients asked
    for, and one connection pool for publishing. When Redis goes away the worker retries
    with exponential back-off (up to `max_backoff` seconds), then resubscribes every
    topic; events emitted meanwhile wait in a bounded outbox (`max_pending`). Pub/sub
    delivers only to connected subscribers: clients miss events published while their
    worker was disconnected.
    """

    in_process = False

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str = "chirp:live:",
        connect_timeout: float = 5.0,
        max_backoff: float = 5.0,
        max_pending: int = 10_000,
        field: str = "redis_url",
    ) -> None:
        super().__init__()
        if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                field, _mask(str(url)), "use redis://host:6379/0, rediss://… (TLS) or unix:///path/redis.sock"
            )
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                field, _mask(url), "RedisBackplane needs redis-py: pip install 'chirp-pounce[redis]'"
            ) from None
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("max_backoff", max_backoff),
            ("max_pending", max_pending),
        ):
            if not value > 0:
                raise ConfigurationError(f"RedisBackplane.{name}", value, "must be greater than 0")
        self.url = url
        self.channel_prefix = channel_prefix
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.max_pending = max_pending
        self.connected = False
        self.reconnects = 0
        self._client: Any = None
        self._pubsub: Any = None
        self._outbox: asyncio.Queue[tuple[str, str]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._command_lock: asyncio.Lock | None = None
        self._confirmations: dict[str, asyncio.Event] = {}
        self._connected_event: asyncio.Event | None = None
        self._dropped = 0
        self._connected_at: float | None = None

    def __repr__(self) -> str:
        return f"RedisBackplane({_mask(self.url)!r})"

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue(self.max_pending)
        self._command_lock = asyncio.Lock()
        self._connected_event = asyncio.Event()
        self._client = aioredis.from_url(self.url, socket_connect_timeout=self.connect_timeout)
        self._tasks = [
            asyncio.create_task(self._listen(), name="chirp-redis-listen"),
            asyncio.create_task(self._publish_loop(), name="chirp-redis-publish"),
        ]
        try:
            await asyncio.wait_for(self._connected_event.wait(), self.connect_timeout)
        except TimeoutError:
            await self.close()
            raise ConnectionError(
                f"RedisBackplane could not reach {_mask(self.url)} within {self.connect_timeout}s; "
                "check that Redis runs and redis_url points at it"
            ) from None

    async def close(self) -> None:
        self._close_subscribers()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._drop_pubsub()
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception as exc:
                logger.debug("closing the Redis client: %r", exc)
            self._client = None
        self.connected = False
        self._loop = None

    # -- publishing ------------------------------------------------------------------------
    def _emit_local(self, topic: str, payload: str) -> None:
        assert self._outbox is not None
        while True:
            try:
                self._outbox.put_nowait((topic, payload))
                return
            except asyncio.QueueFull:
                self._outbox.get_nowait()  # keep the newest: drop the oldest pending event
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.warning("Redis backplane outbox full (%d pending); dropped %d event(s)",
                                   self.max_pending, self._dropped)  # fmt: skip

    async def _publish_loop(self) -> None:
        assert self._outbox is not None
        backoff = 0.1
        while True:
            topic, payload = await self._outbox.get()
            while True:
                try:
                    await self._client.publish(self.channel_prefix + topic, payload)
                    backoff = 0.1
                    break
                except Exception as exc:  # redis.ConnectionError, timeouts, OSError
                    logger.warning("publishing to Redis failed (%s); retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)

    # -- subscribing -----------------------------------------------------------------------
    async def subscribe(self, topics: Iterable[str], buffer: int = DEFAULT_BUFFER) -> Subscription:
        subscription, new = self._register(topics, buffer)
        if new and self.connected:
            waits = [self._expect(t) for t in new]
            try:
                await self._command("subscribe", new)
                await asyncio.wait_for(asyncio.gather(*(w.wait() for w in waits)), self.connect_timeout)
            except (Exception, TimeoutError) as exc:
                # The listener resubscribes every local topic when it reconnects.
                logger.warning("Redis subscribe to %s not confirmed yet: %r", ",".join(new), exc)
        return subscription

    def _expect(self, topic: str) -> asyncio.Event:
        event = self._confirmations.get(topic)
        if event is None or event.is_set():
            event = self._confirmations[topic] = asyncio.Event()
        return event

    def _topics_unused(self, topics: list[str]) -> None:
        if self._loop is not None and self.connected:
            task = self._loop.create_task(self._unsubscribe_if_unused(topics))
            self._tasks.append(task)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    async def _unsubscribe_if_unused(self, topics: list[str]) -> None:
        try:
            await self._command("unsubscribe", topics, only_unused=True)
        except Exception as exc:
            logger.debug("Redis unsubscribe failed: %r", exc)

    async def _command(self, kind: str, topics: list[str], only_unused: bool = False) -> None:
        assert self._command_lock is not None
        async with self._command_lock:
            if only_unused:  # a client may have subscribed again meanwhile
                topics = [t for t in topics if t not in self._subscribers]
            pubsub = self._pubsub
            if not topics or pubsub is None:
                return
            channels = [self.channel_prefix + t for t in topics]
            if kind == "subscribe":
                await pubsub.subscribe(*channels)
            else:
                await pubsub.unsubscribe(*channels)
                for topic in topics:
                    self._confirmations.pop(topic, None)

    async def _listen(self) -> None:
        """Hold the pub/sub connection; reconnect with back-off and resubscribe forever."""
        backoff = 0.1
        control = self.channel_prefix + "~control"  # always subscribed, so reads never idle-fail
        while True:
            try:
                assert self._command_lock is not None
                async with self._command_lock:
                    pubsub = self._client.pubsub()
                    await pubsub.subscribe(control)
                    topics = list(self._subscribers)
                    for topic in topics:
                        self._expect(topic)
                    if topics:
                        await pubsub.subscribe(*(self.channel_prefix + t for t in topics))
                    self._pubsub = pubsub
                await self._read(pubsub, control)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    logger.warning("lost the Redis backplane connection (%s); reconnecting", exc)
                else:
                    logger.debug("Redis backplane connect failed: %r", exc)
                self.connected = False
                await self._drop_pubsub()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.1

    async def _read(self, pubsub: Any, control: str) -> None:
        prefix = self.channel_prefix
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind = message.get("type")
            channel = message.get("channel")
            channel = channel.decode() if isinstance(channel, bytes) else str(channel)
            if kind == "message" and channel.startswith(prefix):
                data = message["data"]
                self.deliver(channel[len(prefix) :], data.decode() if isinstance(data, bytes) else str(data))
            elif kind == "subscribe":
                if channel == control:
                    if not self.connected:
                        if self._connected_at is not None:
                            self.reconnects += 1
                            logger.info(
                                "Redis backplane reconnected; resubscribed %d topic(s)",
                                len(self._subscribers),
                            )
                        self._connected_at = time.monotonic()
                    self.connected = True
                    assert self._connected_event is not None
                    self._connected_event.set()
                elif channel.startswith(prefix):
                    event = self._confirmations.get(channel[len(prefix) :])
                    if event is not None:
                        event.set()

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception as exc:
                logger.debug("closing the Redis pub/sub connection: %r", exc)

    async def probe(self) -> bool:
        """A readiness check: PING on a pooled connection (add it with HealthCheck if wanted)."""
        if self._client is None:
            raise ConnectionError("the Redis backplane is not started")
        return bool(await self._client.ping())
