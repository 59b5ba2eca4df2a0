"""A route edit reloads the proxy; it never replaces it.

The program's own reload step (its ``create`` line and its stdin, as
pulumi-command hands them to the login shell over SSH) runs through a real
sshd against a proxy container on the private engine: a real nginx, with the
program's uploaded files and the two per-host volumes. ``proxy_image.py`` says
what stands in for docker-gen, and why. A load loop sends GET and POST, with
keep-alive on and off, to a host the edit does not touch, through the
container's published port.

The baseline is what the program did before: the edit changed an upload, so
nginx-proxy was replaced delete-first (stop with its grace, remove, create,
start), and every host was down until the new one listened.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import Program, run_program, site_config
from tests.parts.engine import Engine
from tests.parts.ssh import SshServer
from tests.parts.tools import wait_until
from tests.proxy.files import RELOAD_STEP, SETTLE_STEP, uploaded
from tests.proxy.load import RATE, Load
from tests.proxy.proxy_image import proxy_image

pytest_plugins = ["tests.parts.fixtures"]
pytestmark = pytest.mark.tools

OPEN = "skriptoteket.hule.education"
PROTECTED = "prometheus.hemma.hule.education"
NEW_PROMETHEUS = "prometheus2.hemma.hule.education"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def program_for(target: Proxy, **changes: Any) -> Program:
    """The program, with the SSH user's docker CLI and the rehearsal's proxy name."""
    config = {**site_config(), "dockerPath": target.docker_path}
    vhost, htpasswd = target.volumes
    config["proxy"] = {
        **config["proxy"],
        "containerName": target.name,
        "vhostVolume": vhost,
        "htpasswdVolume": htpasswd,
    }
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return run_program(config)


@dataclass
class Proxy:
    engine: Engine
    ssh_server: SshServer
    docker_path: str
    name: str
    image: str
    port: int
    volumes: tuple[str, str]

    def start(self, program: Program) -> None:
        """The proxy container with the program's entrypoint and command (the guard in
        front of nginx-proxy's own entrypoint)."""
        declared = program.container(self.name).inputs
        entrypoint, *guard = declared["entrypoints"]
        vhost, htpasswd = self.volumes
        self.engine.docker(
            "run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:80",
            "-v", f"{vhost}:/etc/nginx/vhost.d", "-v", f"{htpasswd}:/etc/nginx/htpasswd",
            "--entrypoint", entrypoint, self.image, *guard, *declared["command"],
        )  # fmt: skip

    def run(self, program: Program) -> None:
        self.start(program)
        wait_until(f"{self.name} listens", self.answers, timeout=30)

    def answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def workers(self) -> set[str]:
        """nginx's worker PIDs; none while the proxy does not run."""
        found = self.engine.docker("exec", self.name, "pgrep", "-f", "nginx: worker", check=False)
        return set(found.stdout.split()) if found.returncode == 0 else set()

    def reloaded(self, before: set[str]) -> None:
        """Wait until nginx's old workers are gone: a reload is a signal, and the old
        workers finish in their own time."""
        wait_until("nginx's old workers exit", lambda: not (self.workers() & before), 10)

    def step(
        self, program: Program, stdin: str | None = None, step: str = RELOAD_STEP
    ) -> subprocess.CompletedProcess[str]:
        """One of the program's two steps (``proxy-reload`` before the containers,
        ``proxy-settle`` after them), as pulumi-command runs it: its create line through
        the login shell over SSH, its stdin on stdin."""
        declared = program.named(step).inputs
        # The one swap: the mocks' image ID names no image on this engine.
        create = re.sub(r"^image=\S+$", f"image={self.image}", declared["create"], flags=re.M)
        assert create != declared["create"], "the step names the proxy's image"
        before = self.workers()
        done = self.ssh_server.ssh(
            create,
            input=declared["stdin"] if stdin is None else stdin,
            check=False,
            timeout=60,
        )
        if done.returncode == 0 and done.stdout.rstrip().endswith("nginx reloaded"):
            self.reloaded(before)
        return done

    def route(self, *hosts: str) -> None:
        """The hosts whose containers run: what docker-gen renders on their events,
        followed by its notify command."""
        before = self.workers()
        self.engine.docker(
            "exec", "-i", self.name, "sh", "-c",
            "cat > /etc/hemma-test/routes && docker-gen /app/nginx.tmpl "
            "/etc/nginx/conf.d/default.conf && nginx -s reload",
            input="\n".join(hosts) + "\n",
        )  # fmt: skip
        self.reloaded(before)

    def read(self, path: str) -> str:
        return self.engine.docker("exec", self.name, "cat", f"/etc/nginx/{path}").stdout

    def status(
        self, host: str, auth: tuple[str, str] | None = None, size: int = 0, send: bool = False
    ) -> int:
        """One request's status: a GET, or a POST that announces ``size`` bytes (and sends
        them with ``send``; nginx answers 413 from the header alone)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        headers = {"Host": host}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        if size:
            headers["Content-Length"] = str(size)
            connection.putrequest("POST", "/", skip_host=True)
            for key, value in headers.items():
                connection.putheader(key, value)
            connection.endheaders()
            if send:
                connection.send(b"x" * size)
        else:
            connection.request("GET", "/", headers=headers)
        try:
            return connection.getresponse().status
        finally:
            connection.close()


@pytest.fixture
def proxy(engine: Engine, ssh_server: SshServer) -> Iterator[Proxy]:
    tag = f"{time.monotonic_ns() % 10**9}"
    volumes = (f"hm-vhost-{tag}", f"hm-htpasswd-{tag}")
    docker_path = ssh_server.ssh("command -v docker").stdout.strip()
    made = Proxy(engine, ssh_server, docker_path, f"hm-proxy-{tag}", "", free_port(), volumes)
    program = program_for(made)
    static = {
        path.removeprefix("/etc/nginx/"): text
        for path, text in uploaded(program.container(made.name)).items()
    }
    made.image = proxy_image(engine, static)
    try:
        # The first up: the step runs before the proxy exists, and the proxy renders
        # its first config with every file in place.
        first = made.step(program)
        assert first.returncode == 0, first.stderr
        assert "the proxy renders them at its start" in first.stdout
        made.run(program)
        made.route(*program.outputs["proxyPublicHosts"])
        yield made
    finally:
        engine.docker("rm", "--force", made.name, check=False)
        engine.docker("volume", "rm", "--force", *made.volumes, check=False)


def credentials(program: Program, host: str) -> tuple[str, str]:
    found = program.outputs["basicAuthCredentials"][host]
    return found["username"], found["password"]


def test_the_step_puts_every_host_behind_its_own_files(engine: Engine, proxy: Proxy) -> None:
    program = program_for(proxy)
    assert proxy.status(OPEN) == 200
    assert proxy.status(PROTECTED) == 401
    assert proxy.status(PROTECTED, credentials(program, PROTECTED)) == 200
    assert proxy.status(OPEN, size=10 * 1024 * 1024 + 1) == 413
    assert "client_max_body_size 10m;" in proxy.read(f"vhost.d/{OPEN}")


def test_a_hostname_body_size_and_user_edit_reloads_and_no_other_request_fails(
    engine: Engine, proxy: Proxy
) -> None:
    before = program_for(proxy)
    edited = program_for(
        proxy,
        hostnames={"prometheus": NEW_PROMETHEUS},
        proxy={"defaultMaxBodySize": "20m", "basicAuthUser": "ops"},
    )
    assert edited.container(proxy.name).inputs == before.container(proxy.name).inputs
    with Load(proxy.port, OPEN) as load:
        time.sleep(1)
        step = proxy.step(edited)
        assert step.returncode == 0, step.stderr
        # The step's own reload: the new limit holds before any container changes.
        assert proxy.status(OPEN, size=15 * 1024 * 1024, send=True) == 200
        # The old host's container still runs: it keeps its htpasswd, so it stays
        # closed to anyone without the old credentials.
        assert proxy.status(PROTECTED) == 401
        assert proxy.status(PROTECTED, credentials(before, PROTECTED)) == 200
        # Then the engine replaces the app's container: docker-gen sees it go and come.
        proxy.route(*edited.outputs["proxyPublicHosts"])
        time.sleep(1)
    print(f"\nhostname edit, reload: {load.summary()}")
    assert load.sent >= RATE, "the load loop ran"
    assert load.failures == [], load.summary()
    # Two reloads (the step's and docker-gen's); each can close the idle connection
    # of each keep-alive loop once, and a browser sends that request again.
    assert len(load.resent) <= 2 * 2, load.summary()
    assert proxy.status(NEW_PROMETHEUS) == 401
    assert proxy.status(NEW_PROMETHEUS, credentials(edited, NEW_PROMETHEUS)) == 200
    assert credentials(edited, NEW_PROMETHEUS)[0] == "ops"
    assert (
        proxy.status(
            "jaeger.hemma.hule.education", credentials(before, "jaeger.hemma.hule.education")
        )
        == 401
    ), "the user is now ops"
    assert proxy.status(OPEN, size=20 * 1024 * 1024 + 1) == 413


def test_replacing_the_proxy_as_an_upload_edit_did_fails_requests(
    engine: Engine, proxy: Proxy
) -> None:
    """The baseline: delete-first, with the proxy's declared 30 s grace (nginx exits on
    SIGTERM at once)."""
    with Load(proxy.port, OPEN) as load:
        time.sleep(1)
        engine.docker("stop", "--time", "30", proxy.name)
        engine.docker("rm", proxy.name)
        program = program_for(proxy)
        proxy.run(program)
        proxy.route(*program.outputs["proxyPublicHosts"])
        time.sleep(1)
    print(f"\nnginx-proxy replaced delete-first: {load.summary()}")
    assert load.failures, "a replaced proxy drops requests: the baseline must show it"


def test_files_nginx_refuses_are_rolled_back_and_nginx_keeps_serving(
    engine: Engine, proxy: Proxy
) -> None:
    program = program_for(proxy)
    before = proxy.read(f"vhost.d/{OPEN}")
    lines = program.named(RELOAD_STEP).inputs["stdin"].splitlines()
    broken = base64.b64encode(b"no_such_directive on;\n").decode()
    stdin = "\n".join(
        f"vhost.d/{OPEN} {broken}" if line.startswith(f"vhost.d/{OPEN} ") else line
        for line in lines
    )
    step = proxy.step(program, stdin + "\n")
    assert step.returncode == 1
    assert "nginx refused the new per-host files; the previous ones are back" in step.stderr
    assert proxy.read(f"vhost.d/{OPEN}") == before
    listing = proxy.engine.docker("exec", proxy.name, "ls", "-A", "/etc/nginx/vhost.d").stdout
    assert ".hemma-" not in listing, listing
    assert proxy.status(OPEN) == 200
    assert proxy.status(OPEN, size=10 * 1024 * 1024 + 1) == 413


@pytest.mark.parametrize(
    "path", ["conf.d/evil.conf", "vhost.d/../nginx.conf", "vhost.d/a/b", "vhost.d/.hidden", "x"]
)
def test_a_path_outside_the_two_directories_is_refused(
    engine: Engine, proxy: Proxy, path: str
) -> None:
    program = program_for(proxy)
    data = base64.b64encode(b"return 200;\n").decode()
    step = proxy.step(program, f"{path} {data}\n")
    assert step.returncode == 2
    assert f"refusing to write /etc/nginx/{path}" in step.stderr
    found = proxy.engine.docker("exec", proxy.name, "ls", "-A", "/etc/nginx/conf.d").stdout
    assert "evil" not in found


def test_a_declared_host_that_drops_basic_auth_loses_its_htpasswd(
    engine: Engine, proxy: Proxy
) -> None:
    program = program_for(proxy)
    lines = program.named(RELOAD_STEP).inputs["stdin"].splitlines()
    without = "\n".join(line for line in lines if not line.startswith(f"htpasswd/{PROTECTED} "))
    step = proxy.step(program, without + "\n")
    assert step.returncode == 0, step.stderr
    assert "removed: none" in step.stdout, "before the containers: nothing is removed"
    assert proxy.status(PROTECTED) == 401
    settle = proxy.step(program, without + "\n", step=SETTLE_STEP)
    assert settle.returncode == 0, settle.stderr
    assert f"removed: htpasswd/{PROTECTED}" in settle.stdout, "the removal is named"
    assert proxy.status(PROTECTED) == 200


def test_a_proxy_with_other_mounts_is_left_alone(engine: Engine, proxy: Proxy) -> None:
    """The hand-made proxy of an adoption runs under the declared name with its own
    vhost.d: the step writes into the declared volumes and leaves it as it is."""
    program = program_for(proxy)
    engine.docker("rm", "--force", proxy.name)
    own = f"{proxy.name}-own"
    engine.docker("volume", "create", own)
    try:
        engine.docker(
            "run", "-d", "--name", proxy.name, "-v", f"{own}:/etc/nginx/vhost.d", proxy.image,
        )  # fmt: skip
        engine.docker("exec", proxy.name, "sh", "-c", "echo hand-made > /etc/nginx/vhost.d/x")
        lines = program.named(RELOAD_STEP).inputs["stdin"].splitlines()
        edited = [
            f"vhost.d/{OPEN} " + base64.b64encode(b"client_max_body_size 1k;\n").decode()
            if line.startswith(f"vhost.d/{OPEN} ")
            else line
            for line in lines
        ]
        step = proxy.step(program, "\n".join(edited) + "\n")
        assert step.returncode == 0, step.stderr
        assert "the proxy renders them at its start" in step.stdout
        assert proxy.read("vhost.d/x") == "hand-made\n"
        listing = engine.docker("exec", proxy.name, "ls", "-A", "/etc/nginx/vhost.d").stdout
        assert listing.split() == ["x"], "nothing written into the hand-made proxy's files"
    finally:
        engine.docker("rm", "--force", proxy.name, check=False)
        engine.docker("volume", "rm", "--force", own, check=False)
    written = engine.docker(
        "run", "--rm", "-v", f"{proxy.volumes[0]}:/v", proxy.image, "cat", f"/v/{OPEN}"
    ).stdout
    assert written == "client_max_body_size 1k;\n"


def test_a_protected_host_given_to_an_open_route_stays_closed_until_its_containers_change(
    engine: Engine, proxy: Proxy
) -> None:
    """Prometheus moves to a new name and Grafana takes its old one. Until the engine has
    replaced both containers, the old name is still served by prometheus's old
    container: it keeps its htpasswd. The settle step, after the containers, opens it."""
    edited = program_for(proxy, hostnames={"prometheus": NEW_PROMETHEUS, "grafana": PROTECTED})
    step = proxy.step(edited)
    assert step.returncode == 0, step.stderr
    assert "removed: none" in step.stdout
    assert proxy.status(PROTECTED) == 401
    proxy.route(*edited.outputs["proxyPublicHosts"])  # both containers replaced
    assert proxy.status(PROTECTED) == 401, "closed, not open, until the settle step"
    settle = proxy.step(edited, step=SETTLE_STEP)
    assert settle.returncode == 0, settle.stderr
    assert f"removed: htpasswd/{PROTECTED}" in settle.stdout
    assert proxy.status(PROTECTED) == 200, "grafana's route asks for no basic auth"
    assert proxy.status(NEW_PROMETHEUS) == 401
    assert proxy.status(NEW_PROMETHEUS, credentials(edited, NEW_PROMETHEUS)) == 200


def test_a_render_that_lists_no_containers_fails_the_step_and_changes_nothing(
    engine: Engine, proxy: Proxy
) -> None:
    """docker-gen exits 0 when it cannot list the containers, without rendering: a
    step that trusted its exit status would report a basic auth it never turned on."""
    program = program_for(proxy)
    before = proxy.read(f"vhost.d/{OPEN}")
    engine.docker("exec", proxy.name, "touch", "/etc/hemma-test/cannot-list")
    lines = program.named(RELOAD_STEP).inputs["stdin"].splitlines()
    smaller = base64.b64encode(b"include hemma/edge-hardening.conf;\nclient_max_body_size 1k;\n")
    stdin = "\n".join(
        f"vhost.d/{OPEN} {smaller.decode()}" if line.startswith(f"vhost.d/{OPEN} ") else line
        for line in lines
    )
    step = proxy.step(program, stdin + "\n")
    assert step.returncode == 1
    assert "hemma: docker-gen did not render /etc/nginx/conf.d/default.conf" in step.stderr
    assert proxy.read(f"vhost.d/{OPEN}") == before, "the previous file is back"


def test_a_proxy_on_empty_volumes_refuses_to_start(engine: Engine, proxy: Proxy) -> None:
    """Docker's data lost and the volumes made again: the step does not run again (its
    inputs did not change), so the proxy must not serve without the files."""
    program = program_for(proxy)
    engine.docker("rm", "--force", proxy.name)
    engine.docker("volume", "rm", *proxy.volumes)
    proxy.start(program)
    wait_until(
        "the proxy exits",
        lambda: engine.inspect(proxy.name, "{{.State.Running}}") == "false",
        timeout=20,
    )
    assert engine.inspect(proxy.name, "{{.State.ExitCode}}") == "1"
    logs = engine.docker("logs", proxy.name).stderr
    assert "hemma: /etc/nginx/vhost.d has no files" in logs
    assert not proxy.answers()
    engine.docker("rm", "--force", proxy.name)
    first = proxy.step(program)
    assert first.returncode == 0, first.stderr
    proxy.run(program)
    proxy.route(*program.outputs["proxyPublicHosts"])
    assert proxy.status(PROTECTED) == 401
