"""A TCP fault proxy for the reliability suite (RELIABILITY.md F8), in place of Toxiproxy, whose server
cannot be installed here: put between a client (the portal, a worker) and a server (Redis, the
PostgreSQL warehouse), it forwards bytes both ways and, on demand,

- adds latency: each chunk is delivered `latency` seconds after it arrived (per direction, chosen
  with `directions`), pipelined, so throughput is kept and only the delay is added;
- resets: `reset()` aborts every open connection with a TCP RST (SO_LINGER 0), as a crashed
  middlebox or a restarted server does; `refusing = True` resets each new connection at once.

One thread accepts; each connection has one thread that multiplexes its two sockets with a selector
and checks the fault settings every 50 ms, so faults take effect on open connections too.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections import deque
from urllib.parse import urlsplit, urlunsplit

UPSTREAM, DOWNSTREAM = "upstream", "downstream"  # client -> server, server -> client


def _abort(sock: socket.socket) -> None:
    """Close with a RST, not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.latency = 0.0
        self.directions = {DOWNSTREAM}
        self.refusing = False
        self.accepted = self.resets = 0
        self._generation = 0  # bumped by reset(): connections of an older generation abort
        self._lock = threading.Lock()
        self._open: set[threading.Thread] = set()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"fault-proxy-{self.port}")

    @classmethod
    def for_url(cls, url: str) -> FaultProxy:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or {"redis": 6379}.get(parts.scheme, 5432))

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (user, path and query kept)."""
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    # ----------------------------------------------------------------------- faults

    def reset(self) -> int:
        """Abort every open connection with a RST; how many were open."""
        with self._lock:
            self._generation += 1
            count = len(self._open)
            self.resets += count
        return count

    def heal(self) -> None:
        self.latency, self.refusing = 0.0, False

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    # ----------------------------------------------------------------------- plumbing

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.reset()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing:
                with self._lock:
                    self.resets += 1
                _abort(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _abort(client)  # the server is down: so is the proxy's side of it
                continue
            with self._lock:
                self.accepted += 1
                generation = self._generation
            thread = threading.Thread(target=self._pump, args=(client, server, generation), daemon=True)
            with self._lock:
                self._open.add(thread)
            thread.start()

    def _pump(self, client: socket.socket, server: socket.socket, generation: int) -> None:
        peers = {client: (server, UPSTREAM), server: (client, DOWNSTREAM)}
        pending: dict[str, deque[tuple[float, bytes]]] = {UPSTREAM: deque(), DOWNSTREAM: deque()}
        targets = {UPSTREAM: server, DOWNSTREAM: client}
        sel = selectors.DefaultSelector()
        for sock in (client, server):
            sock.setblocking(True)
            sel.register(sock, selectors.EVENT_READ)
        ended = None  # the direction whose sender closed: finish delivering it, then close
        try:
            while True:
                if self._generation != generation or self.refusing or self._stop.is_set():
                    _abort(client)
                    _abort(server)
                    return
                if ended is None:
                    for key, _ in sel.select(0.05):
                        data = b""
                        try:
                            data = key.fileobj.recv(65536)
                        except OSError:
                            pass
                        target, direction = peers[key.fileobj]
                        if not data:
                            ended = direction
                            break
                        delay = self.latency if direction in self.directions else 0.0
                        pending[direction].append((time.monotonic() + delay, data))
                else:
                    time.sleep(0.02)
                now = time.monotonic()
                for direction, queue in pending.items():
                    while queue and queue[0][0] <= now:
                        targets[direction].sendall(queue.popleft()[1])
                if ended is not None and not any(pending.values()):
                    client.close()
                    server.close()
                    return
        except OSError:
            _abort(client)
            _abort(server)
        finally:
            sel.close()
            with self._lock:
                self._open.discard(threading.current_thread())
