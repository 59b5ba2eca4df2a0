"""A bounded load loop for deploy rehearsals: GET and POST to one host, with
keep-alive on and off, counted by method, with the longest time without an answer."""

from __future__ import annotations

import http.client
import itertools
import select
import threading
import time
from dataclasses import dataclass, field

RATE = 40
"""Requests a second over the four kinds (GET/POST, keep-alive on/off)."""


def dropped(connection: http.client.HTTPConnection) -> bool:
    """The server closed this idle keep-alive connection: what urllib3 asks before it
    reuses one (``util.connection.is_connection_dropped``), and browsers too. nginx's old
    workers close their idle connections on a reload; a client that sent on one
    would lose a request nginx never read."""
    return connection.sock is not None and bool(select.select([connection.sock], [], [], 0)[0])


class NoResponse(Exception):
    """The connection failed before a status line came back."""


RESENDABLE = "no response: "
"""An error before any response header: sending on a connection the server had
closed, or no status line back."""


@dataclass
class Failure:
    method: str
    keep_alive: bool
    at: float
    ended: float
    error: str


@dataclass
class Load:
    """GET and POST to one host, with keep-alive on and off, at ``RATE`` a second."""

    port: int
    host: str
    sent: int = 0
    failures: list[Failure] = field(default_factory=list)
    resent: list[Failure] = field(default_factory=list)
    """Requests sent again on a new connection after a reused one closed unanswered."""
    answered: list[float] = field(default_factory=list)
    """When each successful request got its answer."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for method in ("GET", "POST"):
            for keep_alive in (True, False):
                thread = threading.Thread(target=self._loop, args=(method, keep_alive))
                thread.start()
                self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self, method: str, keep_alive: bool) -> None:
        interval = 4 / RATE
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            if connection is not None and dropped(connection):
                connection.close()
                connection = None
            reused = connection is not None
            connection, error = self._request(connection, method, keep_alive)
            if error and reused and error.startswith(RESENDABLE):
                # What a browser does (Chromium's ShouldResendRequest): a request on a
                # reused keep-alive connection that closed before any response header
                # is sent again, once, on a new connection. Counted apart, and bounded
                # by the test: each reload can close one idle connection per loop.
                closed = Failure(method, keep_alive, started, time.monotonic(), error)
                with self._lock:
                    self.resent.append(closed)
                connection, error = self._request(None, method, keep_alive)
            with self._lock:
                self.sent += 1
                if error:
                    failure = Failure(method, keep_alive, started, time.monotonic(), error)
                    self.failures.append(failure)
                else:
                    self.answered.append(time.monotonic())
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        if connection is not None:
            connection.close()

    def _request(
        self, connection: http.client.HTTPConnection | None, method: str, keep_alive: bool
    ) -> tuple[http.client.HTTPConnection | None, str]:
        """One request; the connection to use next (None once closed) and the error."""
        error = ""
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            headers = {"Host": self.host, "Connection": "keep-alive" if keep_alive else "close"}
            body = b"x" * 512 if method == "POST" else None
            try:
                connection.request(method, "/", body=body, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as caught:
                raise NoResponse(f"{type(caught).__name__}: {caught}") from caught
            response.read()
            if response.status != 200:
                error = f"status {response.status}"
        except NoResponse as caught:
            error = f"no response: {caught}"
        except (OSError, http.client.HTTPException) as caught:
            error = f"{type(caught).__name__}: {caught}"
        if error or not keep_alive:
            if connection is not None:
                connection.close()
            connection = None
        return connection, error

    def summary(self) -> str:
        by_kind = {
            f"{m} keep-alive={'on' if k else 'off'}": sum(
                1 for f in self.failures if f.method == m and f.keep_alive == k
            )
            for m in ("GET", "POST")
            for k in (True, False)
        }
        times = sorted(self.answered)
        gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        errors = sorted({f.error.split(":")[0] for f in self.failures})
        return (
            f"{len(self.failures)} of {self.sent} failed ({by_kind}); "
            f"{len(self.resent)} sent again after a reused connection closed; "
            f"longest time without an answer {gap:.2f} s; {errors}"
        )
