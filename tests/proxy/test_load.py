"""The load loop counts what a browser would show: a request on a reused keep-alive
connection that the server closed unanswered is sent again once, and counted apart;
any other unanswered request is a failure."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.proxy.load import Load

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


def _read_request(connection: socket.socket) -> bool:
    """Read one request (headers and a Content-Length body); False once closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += connection.recv(4096)
    return True


@contextmanager
def server(answered: int) -> Iterator[int]:
    """A server that answers the first ``answered`` requests on each connection, then
    reads the next one and closes without a word, as nginx's old worker does on a
    reload in the instant a request arrives."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            for _ in range(answered):
                if not _read_request(connection):
                    return
                connection.sendall(ANSWER)
            _read_request(connection)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_reused_connection_closed_unanswered_is_sent_again_and_counted_apart() -> None:
    with server(answered=1) as port, Load(port, "example.test") as load:
        time.sleep(0.6)
    keep_alive = [f for f in load.resent if f.keep_alive]
    assert load.failures == [], load.summary()
    assert keep_alive, "every second keep-alive request meets a closed connection"
    assert all(f.error.startswith("no response: ") for f in load.resent)
    assert not [f for f in load.resent if not f.keep_alive], "a new connection is never reused"


def test_a_new_connection_closed_unanswered_is_a_failure_and_not_sent_again() -> None:
    with server(answered=0) as port, Load(port, "example.test") as load:
        time.sleep(0.3)
    assert load.resent == []
    assert load.failures, load.summary()
    assert len(load.failures) == load.sent
