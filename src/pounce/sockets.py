"""Creating listening sockets: TCP over IPv4/IPv6 and Unix domain sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from pounce.config import ServerConfig


class BindError(OSError):
    """The listening socket could not be created; the message says why and what to do."""


def bind_socket(config: ServerConfig) -> socket.socket:
    """Create, bind and listen, with `SO_REUSEADDR` so a port in TIME_WAIT binds fine."""
    if config.uds:
        return _bind_unix(config.uds, config.backlog)
    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if config.reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, config.port))
        except OSError as exc:
            raise BindError(_bind_message(host, config.port, exc)) from exc
        sock.listen(config.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_message(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"cannot bind {host}:{port}: the address is already in use; stop the other server or pick another --port"
    if exc.errno == errno.EACCES:
        return f"cannot bind {host}:{port}: permission denied; use a port above 1023 or run with the needed privilege"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"cannot bind {host}:{port}: {host!r} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or ::"
    return f"cannot bind {host}:{port}: {exc.strerror or exc}"


def unix_problem(path: str) -> str | None:
    """Why a Unix socket cannot be bound at `path`, without touching it (None: it can)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"the directory {parent} is not writable"
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return "a file that is not a socket is in the way"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                return None  # a stale socket left by a server that died: bound over
            return "another server is listening on it"
    return None


def _bind_unix(path: str, backlog: int) -> socket.socket:
    problem = unix_problem(path)
    if problem:
        raise BindError(f"cannot bind unix:{path}: {problem}; fix that or pick another --uds")
    if os.path.exists(path):
        os.unlink(path)  # stale
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind unix:{path}: {exc.strerror or exc}; pick another --uds") from exc
    return sock


def port_in_use(host: str, port: int) -> bool:
    """True if another process is actively listening on host:port (TIME_WAIT is not "in use")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False
