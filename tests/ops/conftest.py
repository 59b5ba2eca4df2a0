"""Real HTTPS servers on 127.0.0.1 with certificates made by openssl, and an ssh stand-in."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT
from tests.ops.helpers import FAKE_DOCKER, FAKE_SSH, executable

GOOD_HOSTS = [
    "ok.test",
    "error.test",
    "redirect.test",
    "slow.test",
    "refused.test",
    "flaky.test",
    "auth.test",
    *(f"g{i}.test" for i in range(6)),
]


@dataclass(frozen=True)
class Pki:
    ca: Path
    good: tuple[Path, Path]
    expiring: tuple[Path, Path]


def _openssl(cwd: Path, command: str, *more: str) -> None:
    """``command`` holds no spaces inside a word; ``more`` are words that may."""
    done = subprocess.run(
        ["openssl", *command.split(), *more], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


EC_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"


def _leaf(cwd: Path, name: str, hosts: list[str], days: int) -> tuple[Path, Path]:
    _openssl(cwd, f"req -new {EC_KEY} -keyout {name}.key -out {name}.csr", "-subj", "/CN=leaf")
    (cwd / f"{name}.ext").write_text(
        "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n"
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        cwd,
        f"x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days {days} "
        f"-extfile {name}.ext -out {name}.pem",
    )
    return cwd / f"{name}.pem", cwd / f"{name}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    assert shutil.which("openssl"), "the openssl CLI makes the test certificates"
    cwd = tmp_path_factory.mktemp("pki")
    _openssl(
        cwd,
        f"req -x509 {EC_KEY} -keyout ca.key -out ca.pem -days 30",
        "-subj",
        "/CN=hemma doctor test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return Pki(
        ca=cwd / "ca.pem",
        good=_leaf(cwd, "good", GOOD_HOSTS, 365),
        expiring=_leaf(cwd, "expiring", ["expiring.test"], 3),
    )


@dataclass
class Server:
    """An HTTPS server on 127.0.0.1 that answers every GET the same way."""

    cert: tuple[Path, Path]
    status: int = 200
    delay: float = 0.0
    fail_first: int = 0  # answer 500 to this many requests first
    password: str | None = None  # require Basic auth for user "ops"
    requests: int = 0
    inflight: int = 0
    max_inflight: int = 0
    hosts: list[str] = field(default_factory=list)
    sni: list[str] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.hosts.append(handler.headers.get("Host", ""))
            self.auth.append(handler.headers.get("Authorization", ""))
            failing = self.requests <= self.fail_first
        try:
            if self.delay:
                self._release.wait(self.delay)
        finally:
            # Counted out before the answer leaves: a client that has its answer may send
            # the next request at once, and this thread may not have run again by then.
            with self._lock:
                self.inflight -= 1
        status = 500 if failing else self.status
        if self.password is not None:
            wanted = "Basic " + base64.b64encode(f"ops:{self.password}".encode()).decode()
            status = status if handler.headers.get("Authorization") == wanted else 401
        body = b"ok\n"
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> Server:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that only shake hands and leave are expected

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self.cert)

        def remember(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            self.sni.append(name or "")

        context.sni_callback = remember
        httpd = Quiet(("127.0.0.1", 0), Handler)
        # The handshake runs in the handler thread, so one slow client blocks no other.
        httpd.socket = context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = httpd.server_address[1]
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, Server]]:
    running = {
        "ok": Server(pki.good).start(),
        "error": Server(pki.good, status=500).start(),
        "redirect": Server(pki.good, status=302).start(),
        "slow": Server(pki.good, delay=5).start(),
        "expiring": Server(pki.expiring).start(),
    }
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture
def server_factory(pki: Pki) -> Iterator[Any]:
    started: list[Server] = []

    def make(**kwargs: Any) -> Server:
        server = Server(pki.good, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def refused_port() -> int:
    """A port that was just free: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class FakeSsh:
    path: Path
    log: Path
    docker_log: Path
    cwd: Path


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSsh:
    """An ssh that records its calls; "exec" mode runs them locally with a docker stand-in."""
    bin_dir = tmp_path / "remote-bin"
    bin_dir.mkdir()
    executable(bin_dir / "docker", FAKE_DOCKER)
    cwd = tmp_path / "remote-home"
    cwd.mkdir()
    fake = FakeSsh(
        path=executable(tmp_path / "fake-ssh", FAKE_SSH),
        log=tmp_path / "ssh.log",
        docker_log=tmp_path / "docker.log",
        cwd=cwd,
    )
    monkeypatch.setenv("FAKE_SSH_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_SSH_PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_SSH_CWD", str(cwd))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(fake.docker_log))
    monkeypatch.setenv("FAKE_SSH_MODE", "record")
    for name in (
        "FAKE_SSH_EXIT",
        "FAKE_SSH_COMMAND_EXIT",
        "FAKE_SSH_ONLY_TARGET",
        "FAKE_DOCKER_SICK",
        "FAKE_DOCKER_SAYS",
        "HEMMA_SSH",
    ):
        monkeypatch.delenv(name, raising=False)
    assert os.access(fake.path, os.X_OK)
    return fake


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that sends back what it gets: what a tunnel reaches."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def echo(client: socket.socket) -> None:
        with client:
            while data := client.recv(65536):
                client.sendall(data)

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            client.settimeout(10)
            threading.Thread(target=echo, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="session")
def plan_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``scripts/plan --json`` of the default config, as the operator runs it."""
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "plan"), "--quiet", "--json", str(out)],
        capture_output=True, text=True, env={**os.environ, "HEMMA_VENV": str(ROOT / "venv")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return data
