"""The supervisor: N forked workers sharing one listening socket.

It restarts crashed workers (with back-off and a crash-loop limit), drains all of them
on SIGTERM/SIGINT, and on SIGUSR1/SIGHUP starts a new generation with re-imported
code, waits until it is ready, and only then drains the old one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from pounce.config import ServerConfig
from pounce.errors import AppImportError, ConfigurationError, StartupFailed
from pounce.features.shared import SharedState
from pounce.implementations import run_options
from pounce.server import Server, server_alpn
from pounce.sockets import bind_socket
from pounce.tls import ServerTLS, TLSFileError, check_files
from pounce.workers import effective_worker_mode

logger = logging.getLogger("pounce.error")

CRASH_WINDOW = 60.0
CRASH_LIMIT = 5
EXIT_IMPORT_FAILED = 1
EXIT_CONFIGURATION = 2
EXIT_STARTUP_FAILED = 3
_PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    pid: int
    worker_id: int
    generation: int
    ready_fd: int
    ready: bool = False
    stopping: bool = False
    inbox: bytes = (
        b""  # what the worker wrote on its ready pipe: b"R" (then b"X" to retire), or b"F" + why it failed
    )
    replaces: int | None = None  # the pid of the retiring worker this one takes over from
    started: float = field(default_factory=time.monotonic)

    @property
    def error(self) -> str:
        return self.inbox[1:].decode(errors="replace") if self.inbox.startswith(b"F") else ""


def default_loader(config: ServerConfig) -> Callable[[], Any]:
    def load() -> Any:
        from pounce.importer import import_app

        return import_app(config.app)

    return load


class Supervisor:
    def __init__(
        self,
        config: ServerConfig,
        workers: int,
        load_app: Callable[[], Any] | None = None,
        preloaded: Any = None,
    ) -> None:
        self.config = config
        self.count = workers
        self.load_app = load_app or default_loader(config)
        self.preloaded = preloaded  # the app the first generation forks with, already imported
        self.workers: dict[int, Worker] = {}
        self.generation = 0
        self.crashes: list[float] = []
        self.pending_restarts: list[tuple[float, int]] = []
        self.signals: list[int] = []
        self.stopping = False
        self.interrupted = False  # a SIGINT arrived: the next one is a second Ctrl-C
        self.reload_generation: int | None = None
        self.start_failures: set[str] = set()
        self.reload_requested = False  # a reload signal arrived while one was under way
        self.selector = selectors.DefaultSelector()

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> int:
        sock = bind_socket(self.config)
        self.sock = sock
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGQUIT,
            signal.SIGUSR1,
            signal.SIGHUP,
            signal.SIGCHLD,
        )
        previous = {s: signal.signal(s, self._on_signal) for s in handled}
        self.wake_fds = (wake_r, wake_w)
        self.shared = SharedState(self.config)  # before forking: the workers inherit its environment
        # The first generation shares one TLS context, built from the files as they are now: a
        # renewal landing while workers start cannot give them different (or broken) ones.
        self.tls = ServerTLS(self.config, server_alpn()) if self.config.ssl_certfile else None
        logger.info(
            "supervisor %d starting %d workers (%s mode)",
            os.getpid(),
            self.count,
            effective_worker_mode(self.config.worker_mode),
        )
        try:
            self.generation = 1
            for worker_id in range(self.count):
                self._spawn(worker_id, 1)
            return self._loop(wake_r)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.selector.close()
            os.close(wake_r)
            os.close(wake_w)
            sock.close()
            self.shared.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def _loop(self, wake_r: int) -> int:
        first_generation_ready = False
        while True:
            # Wake for the next due restart, not half a second later: a replacement is ready sooner.
            due = min((t for t, _ in self.pending_restarts), default=time.monotonic() + 0.5)
            for key, _ in self.selector.select(timeout=max(0.0, min(0.5, due - time.monotonic()))):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                else:
                    self._on_ready_message(key.data)
            code = self._reap()
            if code is not None:
                return code
            if not first_generation_ready and all(w.ready for w in self.workers.values()) and self.workers:
                first_generation_ready = True
                logger.info("all %d workers ready", len(self.workers))
            while self.signals:
                signum = self.signals.pop(0)
                name = signal.Signals(signum).name
                if signum == signal.SIGQUIT or (signum == signal.SIGINT and self.interrupted):
                    logger.warning(
                        "received %s, stopping workers without waiting for in-flight requests", name
                    )
                    self._signal_all(signal.SIGQUIT)
                    self._wait_all(5)
                    return 1
                if signum in (signal.SIGTERM, signal.SIGINT):
                    # One request to stop, however many copies arrive: a signal sent to the
                    # whole process group reaches the workers too, and they drain on it.
                    self.interrupted = self.interrupted or signum == signal.SIGINT
                    if self.stopping:
                        logger.info("received %s again; already draining", name)
                        continue
                    logger.info("received %s, draining workers", name)
                    self.stopping = True
                    self.sock.close()  # the workers hold the socket; closing ours lets it go with theirs
                    self._signal_all(signal.SIGTERM)
                    self.stop_deadline = time.monotonic() + self.config.shutdown_timeout + 5
                elif signum in (signal.SIGUSR1, signal.SIGHUP) and not self.stopping:
                    self._start_reload()
            if self.stopping:
                if not self.workers:
                    return 0
                if time.monotonic() > self.stop_deadline:
                    logger.warning("workers did not stop in time; killing them")
                    self._signal_all(signal.SIGKILL)
                    self._wait_all(5)
                    return 0
            self._finish_reload()
            self._restart_due()

    # -- workers ---------------------------------------------------------------------------
    def _spawn(self, worker_id: int, generation: int) -> int:
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(ready_r)
            code = 1
            try:
                code = self._child(worker_id, generation, ready_w)
            except BaseException:
                logger.exception("worker %d crashed", worker_id)
            finally:
                os._exit(code)
        os.close(ready_w)
        self.workers[pid] = Worker(pid, worker_id, generation, ready_r)
        self.selector.register(ready_r, selectors.EVENT_READ, pid)
        return pid

    def _child(self, worker_id: int, generation: int, ready_w: int) -> int:
        parent = os.getppid()
        _die_with_parent()
        if os.getppid() != parent:
            return 1
        signal.set_wakeup_fd(-1)
        # The supervisor owns SIGINT (a terminal's Ctrl-C reaches the whole process group)
        # and the reload signals; a worker drains on the SIGTERM the supervisor sends.
        for s in (signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        self.selector.close()
        for fd in self.wake_fds:
            os.close(fd)
        if generation > 1:
            purge_user_modules(Path.cwd())
        try:
            if generation > 1:
                check_files(self.config)  # renewed TLS files are judged before a worker builds on them
            app = self.preloaded if generation == 1 and self.preloaded is not None else self.load_app()
        except TLSFileError as exc:
            _send(ready_w, b"F" + str(exc).encode())
            return EXIT_IMPORT_FAILED
        except StartupFailed as exc:  # the loader ran the app's own check, and it failed
            _send(ready_w, b"F" + f"application startup failed: {exc}".encode())
            return EXIT_STARTUP_FAILED
        except AppImportError as exc:
            _send(ready_w, b"F" + f"{exc.message} ({exc.hint})".encode())
            return EXIT_IMPORT_FAILED
        except ConfigurationError as exc:
            _send(ready_w, b"F" + str(exc).encode())
            return EXIT_CONFIGURATION
        except Exception as exc:
            _send(ready_w, b"F" + f"{type(exc).__name__}: {exc}".encode())
            return EXIT_IMPORT_FAILED
        try:
            server = Server(
                app, self.config, worker_id, tls=self.tls if generation == 1 else None
            )  # builds this worker's exporters and clients
        except ConfigurationError as exc:
            _send(ready_w, b"F" + str(exc).encode())
            return EXIT_CONFIGURATION
        server.retire = lambda: _send(ready_w, b"X")
        try:
            anyio.run(
                lambda: server.serve(
                    self.sock,
                    on_ready=lambda _: _send(ready_w, b"R"),
                    signals=(signal.SIGTERM, signal.SIGQUIT),
                ),
                **run_options(self.config.loop),
            )
        except StartupFailed as exc:
            _send(ready_w, b"F" + f"application startup failed: {exc}".encode())
            return EXIT_STARTUP_FAILED
        return 0

    def _on_ready_message(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is None:
            return
        try:
            data = os.read(worker.ready_fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(worker.ready_fd)
            os.close(worker.ready_fd)
            worker.ready_fd = -1
            return
        worker.inbox += data  # a failure report can take several reads
        if not worker.inbox.startswith(b"R"):
            return
        if not worker.ready:
            worker.ready = True
            logger.info("worker %d (pid %d) ready", worker.worker_id, worker.pid)
            self._took_over(worker)
        if b"X" in worker.inbox and not worker.stopping and not self.stopping:
            worker.inbox = b"R"
            self._replace(worker)

    def _replace(self, worker: Worker) -> None:
        """max_requests reached: start the worker's successor; it drains once that one is ready."""
        if any(w.replaces == worker.pid for w in self.workers.values()):
            return
        logger.info(
            "worker %d (pid %d) reached max_requests; starting its replacement", worker.worker_id, worker.pid
        )
        new_pid = self._spawn(worker.worker_id, worker.generation)
        self.workers[new_pid].replaces = worker.pid

    def _took_over(self, worker: Worker) -> None:
        old = self.workers.get(worker.replaces) if worker.replaces is not None else None
        if old is not None and not old.stopping:
            old.stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(old.pid, signal.SIGTERM)
            logger.info(
                "worker %d recycled: pid %d drains, pid %d serves", worker.worker_id, old.pid, worker.pid
            )

    def _reap(self) -> int | None:
        """Collect exited workers; restart crashed ones. Returns an exit code to stop with."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.shared.worker_exited(pid)
            if worker.ready_fd >= 0:
                with contextlib.suppress(OSError):
                    while rest := os.read(worker.ready_fd, 65536):
                        worker.inbox += rest
                self.selector.unregister(worker.ready_fd)
                os.close(worker.ready_fd)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping or worker.stopping:
                continue
            if worker.generation == self.reload_generation:
                logger.error("reload aborted: new worker %d failed: %s; the old generation keeps serving",
                             worker.worker_id, worker.error or f"exit code {code}")  # fmt: skip
                self._abort_reload()
                continue
            if worker.replaces is not None and not worker.ready:
                logger.error("worker %d's replacement failed to start: %s; the worker keeps serving",
                             worker.worker_id, worker.error or f"exit code {code}")  # fmt: skip
                continue
            if not worker.ready:
                self._log_start_failure(worker, code)
                if self.generation == 1 and not any(w.ready for w in self.workers.values()):
                    self.stopping = True
                    self._signal_all(signal.SIGTERM)
                    self._wait_all(self.config.shutdown_timeout)
                    return code if code > 0 else 1
            else:
                logger.error(
                    "worker %d (pid %d) exited with code %s; restarting", worker.worker_id, pid, code
                )
            now = time.monotonic()
            self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
            if len(self.crashes) > CRASH_LIMIT:
                logger.error(
                    "crash loop: %d worker crashes within %ds; stopping", len(self.crashes), CRASH_WINDOW
                )
                self.stopping = True
                self._signal_all(signal.SIGTERM)
                self._wait_all(self.config.shutdown_timeout)
                return 1
            delay = min(5.0, 0.1 * 2 ** (len(self.crashes) - 1))
            self.pending_restarts.append((now + delay, worker.worker_id))

    def _log_start_failure(self, worker: Worker, code: int) -> None:
        """Say why a worker did not start; the same reason from several workers is printed once."""
        why = worker.error or f"exit code {code}"
        if why in self.start_failures:
            logger.error("worker %d failed to start: the same error as above", worker.worker_id)
            return
        self.start_failures.add(why)
        logger.error("worker %d failed to start: %s", worker.worker_id, why)

    def _restart_due(self) -> None:
        if self.stopping:
            self.pending_restarts.clear()  # nothing starts while everything stops
            return
        now = time.monotonic()
        due = [w for t, w in self.pending_restarts if t <= now]
        self.pending_restarts = [(t, w) for t, w in self.pending_restarts if t > now]
        for worker_id in due:
            self._spawn(worker_id, self.generation)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers.values():
            worker.stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)

    def _wait_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.workers and time.monotonic() < deadline:
            self._reap_quietly()
            time.sleep(0.02)
        if self.workers:
            self._signal_all(signal.SIGKILL)
            while self.workers:
                self._reap_quietly()
                time.sleep(0.02)

    def _reap_quietly(self) -> None:
        for pid in list(self.workers):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                worker = self.workers.pop(pid)
                self.shared.worker_exited(pid)
                if worker.ready_fd >= 0:
                    self.selector.unregister(worker.ready_fd)
                    os.close(worker.ready_fd)

    # -- rolling reload --------------------------------------------------------------------
    def _start_reload(self) -> None:
        if self.reload_generation is not None:
            # The code may have changed again since this generation imported it: once it is
            # serving (or has failed), another generation imports the newest code.
            logger.info("reload already in progress; another one follows it")
            self.reload_requested = True
            return
        self.reload_generation = self.generation + 1
        logger.info("reloading: starting generation %d", self.reload_generation)
        for worker_id in range(self.count):
            self._spawn(worker_id, self.reload_generation)

    def _finish_reload(self) -> None:
        gen = self.reload_generation
        if gen is None:
            return
        new = [w for w in self.workers.values() if w.generation == gen]
        if len(new) < self.count or not all(w.ready for w in new):
            return
        old = [w for w in self.workers.values() if w.generation != gen]
        for worker in old:
            worker.stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        self.generation = gen
        self.reload_generation = None
        self.pending_restarts.clear()
        logger.info("reload complete: generation %d serving, %d old workers draining", gen, len(old))
        self._follow_up_reload()

    def _abort_reload(self) -> None:
        gen = self.reload_generation
        self.reload_generation = None
        for worker in self.workers.values():
            if worker.generation == gen:
                worker.stopping = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
        self._follow_up_reload()

    def _follow_up_reload(self) -> None:
        if self.reload_requested and not self.stopping:
            self.reload_requested = False
            self._start_reload()


def _send(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, data)


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this worker when the supervisor dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            logger.debug("prctl(PR_SET_PDEATHSIG) unavailable")


def purge_user_modules(root: Path) -> None:
    """Forget modules loaded from `root` so a new worker generation imports fresh code."""
    prefix = str(root.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.abspath(path).startswith(prefix) and "site-packages" not in path:
            del sys.modules[name]
