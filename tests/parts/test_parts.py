"""The parts do what later tests will rely on, checked against the real daemons."""

from __future__ import annotations

import http.server
import ipaddress
import secrets
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.parts import images
from tests.parts.engine import BRIDGE_IP, Engine
from tests.parts.images import ServeImage
from tests.parts.ssh import SshServer
from tests.parts.tools import MissingTool, require, wait_until

PG_PASSWORD = "pg-test-password"


class Scratch:
    """Containers and networks for one test, removed after it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tag = secrets.token_hex(3)
        self.containers: list[str] = []
        self.networks: list[str] = []

    def network(self, what: str) -> str:
        name = f"{what}-{self.tag}"
        self.engine.docker("network", "create", name)
        self.networks.append(name)
        return name

    def start(self, what: str, *args: str) -> str:
        """``docker run -d --name WHAT-TAG ARGS``; the name is also its DNS name."""
        name = f"{what}-{self.tag}"
        self.containers.append(name)
        self.engine.docker("run", "--detach", "--name", name, *args)
        return name

    def once(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.docker("run", "--rm", *args, check=check, timeout=60)

    def remove(self) -> None:
        if self.containers:
            self.engine.docker("rm", "--force", "--volumes", *self.containers, check=False)
        for network in self.networks:
            self.engine.docker("network", "rm", network, check=False)


@pytest.fixture
def scratch(engine: Engine) -> Iterator[Scratch]:
    made = Scratch(engine)
    try:
        yield made
    finally:
        made.remove()


def retrying(command: str, tries: int = 50) -> str:
    """A shell loop inside the client container: the server may still be starting."""
    return f"for i in $(seq {tries}); do {command} && exit 0; sleep 0.2; done; exit 1"


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_a_missing_tool_fails_naming_its_package() -> None:
    with pytest.raises(MissingTool, match="apt-get install hemma-nonexistent"):
        require("hemma-nonexistent-tool", "hemma-nonexistent")


def test_the_debootstrapped_root_is_built_once_per_machine_and_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slow part of the test images (debootstrap, minutes on a fresh machine) is kept
    in the user's cache: a second run finds it and runs nothing, and a changed package
    list is a new key."""

    def no_debootstrap(*args: object) -> str:
        raise AssertionError("debootstrap would run")

    monkeypatch.setattr(images, "require", no_debootstrap)
    kept = tmp_path / f"debian-{images.DEBIAN_SUITE}-{images.debian_key()}.tar"
    kept.write_bytes(b"rootfs")
    assert images.debian_rootfs_tarball(tmp_path) == kept
    monkeypatch.setattr(images, "DEBIAN_PACKAGES", (*images.DEBIAN_PACKAGES, "hemma-extra"))
    assert images.debian_key() not in kept.name
    with pytest.raises(AssertionError, match="debootstrap would run"):
        images.debian_rootfs_tarball(tmp_path)


def test_containers_reach_each_other_by_name_on_their_network_only(
    scratch: Scratch, busybox_image: str, serve_image: ServeImage
) -> None:
    near, far = scratch.network("near"), scratch.network("far")
    web = scratch.start("web", "--network", near, serve_image())

    same = scratch.once(
        "--network", near, busybox_image,
        "sh", "-c", retrying(f"wget -q -O - http://{web}:8080/health"),
    )  # fmt: skip
    assert same.stdout == "ok\n"

    # The engine resolves nothing outside a network; one short try says so.
    other = scratch.once(
        "--network", far, "--dns-option", "timeout:1", "--dns-option", "attempts:1",
        busybox_image, "wget", "-q", "-O", "-", f"http://{web}:8080/health",
        check=False,
    )  # fmt: skip
    assert other.returncode != 0
    assert "bad address" in other.stderr, other.stderr


class _Probe(http.server.BaseHTTPRequestHandler):
    """Answers its token; each server gets a subclass with its own token and list."""

    token: ClassVar[str] = ""
    clients: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.clients.append(self.client_address[0])
        body = self.token.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bridge_server() -> Iterator[tuple[int, type[_Probe]]]:
    """An HTTP server on the host, bound to the engine's bridge address only."""
    handler = type("Probe", (_Probe,), {"token": secrets.token_hex(8), "clients": []})
    server = http.server.ThreadingHTTPServer((BRIDGE_IP, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_host_gateway_reaches_a_host_server_on_the_bridge_address(
    scratch: Scratch,
    busybox_image: str,
    bridge_server: tuple[int, type[_Probe]],
) -> None:
    port, probe = bridge_server
    apps = scratch.network("apps")
    for network in ("bridge", apps):
        done = scratch.once(
            "--network", network, "--add-host", "host.docker.internal:host-gateway",
            busybox_image, "sh", "-c",
            "grep -w host.docker.internal /etc/hosts && "
            f"wget -q -O - http://host.docker.internal:{port}/probe",
        )  # fmt: skip
        hosts_line, body = done.stdout.splitlines()
        assert hosts_line.split() == [BRIDGE_IP, "host.docker.internal"]
        assert body == probe.token
    assert len(probe.clients) == 2
    bridge = ipaddress.ip_network(f"{BRIDGE_IP}/24", strict=False)
    assert ipaddress.ip_address(probe.clients[0]) in bridge


def test_published_port_serves_the_health_path_and_404_elsewhere(
    engine: Engine, scratch: Scratch, serve_image: ServeImage
) -> None:
    image = serve_image("hemma-test/app-stand-in:1", 9000, "/api/health")
    app = scratch.start("app", "--publish", "127.0.0.1::9000", image)
    address = engine.docker("port", app, "9000/tcp").stdout.split()[0]
    assert address.startswith("127.0.0.1:")

    wait_until("app", lambda: http_status(f"http://{address}/api/health") == 200, 10)
    assert http_status(f"http://{address}/nope") == 404
    with urllib.request.urlopen(f"http://{address}/api/health", timeout=5) as response:
        assert response.read() == b"ok\n"


def test_one_serve_image_takes_port_and_path_at_run_time(
    engine: Engine, scratch: Scratch, serve_image: ServeImage
) -> None:
    """With the program's kind of health check (wget_probe), run by Docker."""
    probe = "wget -q -O /dev/null http://127.0.0.1:9090/-/healthy || exit 1"
    prom = scratch.start(
        "prom", "-e", "SERVE_PORT=9090", "-e", "SERVE_HEALTH_PATH=/-/healthy",
        "--health-cmd", probe, "--health-interval", "1s", serve_image(),
    )  # fmt: skip
    engine.wait_for(prom, "{{.State.Health.Status}}", "healthy", timeout=30)

    grafana = scratch.start("grafana", serve_image(), "serve", "3000", "/api/health")
    assert engine.docker(
        "exec", grafana, "sh", "-c", retrying("wget -q -O - http://127.0.0.1:3000/api/health")
    ).stdout == "ok\n"  # fmt: skip
    # 0, not 137: it exits on SIGTERM rather than being killed after the grace period.
    stopped = engine.docker("stop", "--time", "10", grafana)
    assert stopped.returncode == 0
    assert engine.inspect(grafana, "{{.State.ExitCode}}") == "0"


def test_debian_postgres_serves_like_the_official_image(
    engine: Engine, scratch: Scratch, pg_image: str
) -> None:
    net = scratch.network("db")
    pg = scratch.start(
        "pg", "--network", net, "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}",
        "--health-cmd", "pg_isready -h 127.0.0.1 -U postgres -d postgres",
        "--health-interval", "1s",
        pg_image,
    )  # fmt: skip
    engine.wait_for(pg, "{{.State.Health.Status}}", "healthy", timeout=60)

    local = engine.docker("exec", pg, "psql", "-U", "postgres", "-Atc", "select 1")
    assert local.stdout == "1\n"
    pid1 = engine.docker("exec", pg, "ps", "-o", "user=,comm=", "-p", "1").stdout.split()
    assert pid1 == ["postgres", "postgres"]
    tools = engine.docker("exec", pg, "bash", "-c", "type -P pg_isready psql pg_dump pg_restore")
    assert [tool.rsplit("/", 1)[1] for tool in tools.stdout.split()] == [
        "pg_isready", "psql", "pg_dump", "pg_restore",
    ]  # fmt: skip

    over_tcp = scratch.once(
        "--network", net, "-e", f"PGPASSWORD={PG_PASSWORD}", pg_image,
        "psql", "-h", pg, "-U", "postgres", "-Atc", "select current_user, inet_server_port()",
    )  # fmt: skip
    assert over_tcp.stdout == "postgres|5432\n"
    wrong = scratch.once(
        "--network", net, "-e", "PGPASSWORD=wrong", pg_image,
        "psql", "-h", pg, "-U", "postgres", "-c", "select 1",
        check=False,
    )  # fmt: skip
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr


def test_debian_postgres_keeps_its_volume_and_runs_init_scripts_once(
    engine: Engine, scratch: Scratch, pg_image: str, tmp_path: Path
) -> None:
    """The program's settings: POSTGRES_USER set, data on a named volume."""
    # Read inside the container by its postgres user, not root.
    tmp_path.chmod(0o755)
    (tmp_path / "init.sql").write_text(
        "create table from_init (n int); insert into from_init values (1);\n"
    )
    (tmp_path / "init.sql").chmod(0o644)
    volume = f"pgdata-{scratch.tag}"
    engine.docker("volume", "create", volume)
    try:
        args = (
            "-e", f"POSTGRES_PASSWORD={PG_PASSWORD}", "-e", "POSTGRES_USER=hemma_admin",
            "-v", f"{volume}:/var/lib/postgresql/data",
            "-v", f"{tmp_path}:/docker-entrypoint-initdb.d:ro",
            # TCP: the image's init server listens on its socket only, and stops.
            "--health-cmd", "pg_isready -h 127.0.0.1 -U hemma_admin -d postgres",
            "--health-interval", "1s",
            pg_image,
        )  # fmt: skip

        def sql(container: str, query: str) -> str:
            return engine.docker(
                "exec", container, "psql", "-U", "hemma_admin", "-d", "hemma_admin",
                "-v", "ON_ERROR_STOP=1", "-Atc", query,
            ).stdout  # fmt: skip

        first = scratch.start("pg-first", *args)
        engine.wait_for(first, "{{.State.Health.Status}}", "healthy", timeout=60)
        sql(first, "create table kept (n int); insert into kept values (42)")
        dump = engine.docker(
            "exec", first, "sh", "-c",
            "pg_dump -U hemma_admin -Fc hemma_admin >/tmp/db.dump && pg_restore -l /tmp/db.dump",
        )  # fmt: skip
        assert "TABLE public kept" in dump.stdout
        assert "init process complete" in engine.docker("logs", first).stdout
        engine.docker("stop", first)
        assert engine.inspect(first, "{{.State.ExitCode}}") == "0"
        engine.docker("rm", first)

        second = scratch.start("pg-second", *args)
        engine.wait_for(second, "{{.State.Health.Status}}", "healthy", timeout=60)
        assert sql(second, "select n from kept") == "42\n"
        assert sql(second, "select count(*) from from_init") == "1\n"
        assert "init process complete" not in engine.docker("logs", second).stdout
    finally:
        scratch.remove()
        engine.docker("volume", "rm", "--force", volume, check=False)


def test_ssh_user_has_the_engine_as_docker_and_sudo(
    engine: Engine, scratch: Scratch, busybox_image: str, ssh_server: SshServer
) -> None:
    marker = scratch.start("marker", busybox_image, "sleep", "300")

    assert ssh_server.ssh("echo $DOCKER_HOST").stdout.strip() == engine.host
    assert marker in ssh_server.ssh("docker ps --format '{{.Names}}'").stdout.split()
    assert ssh_server.ssh("sudo -n true").returncode == 0
    assert ssh_server.ssh("sudo -n id -u").stdout.strip() == "0"
    assert marker in ssh_server.ssh("sudo -n docker ps --format '{{.Names}}'").stdout.split()
    assert ssh_server.ssh("cat", input="through stdin").stdout == "through stdin"


def test_docker_over_ssh_from_the_host(
    engine: Engine, scratch: Scratch, busybox_image: str, ssh_server: SshServer
) -> None:
    marker = scratch.start("remote", busybox_image, "sleep", "300")
    version = ssh_server.docker("version", "--format", "{{.Server.Version}}").stdout
    assert version == engine.docker("version", "--format", "{{.Server.Version}}").stdout
    assert marker in ssh_server.docker("ps", "--format", "{{.Names}}").stdout.split()


def test_ssh_server_identity_is_what_clients_see(ssh_server: SshServer) -> None:
    scanned = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(ssh_server.port), ssh_server.host],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert " ".join(scanned[1:3]) == ssh_server.host_key
    assert ssh_server.host_key.startswith("ssh-ed25519 AAAA")
    assert ssh_server.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert ssh_server.docker_host == f"ssh://hemma-test@127.0.0.1:{ssh_server.port}"


def test_engine_restart_brings_back_always_but_not_stopped_unless_stopped(
    engine: Engine, scratch: Scratch, serve_image: ServeImage
) -> None:
    always = scratch.start("always", "--restart", "always", serve_image())
    unless = scratch.start("unless", "--restart", "unless-stopped", serve_image())
    untouched = scratch.start("untouched", "--restart", "unless-stopped", serve_image())
    engine.docker("stop", always, unless)
    old_pid = engine.pid

    engine.restart()

    assert engine.pid != old_pid
    engine.wait_for(always, "{{.State.Status}}", "running", 30, exited_is_final=False)
    engine.wait_for(untouched, "{{.State.Status}}", "running", 30, exited_is_final=False)
    assert engine.inspect(unless, "{{.State.Status}}") == "exited"
