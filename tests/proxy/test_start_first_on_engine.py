"""A start-first deploy through a real nginx, with a load loop running: no failed
request, where the delete-first baseline fails some.

What runs here, on the private engine:

- **The edge**: this machine's nginx in a container, proxying each ``VIRTUAL_HOST``
  to an ``upstream`` of its containers, as nginx-proxy's nginx.tmpl (1.11.6)
  renders it: ``server IP:PORT;`` per container, ``server 127.0.0.1 down;`` when
  none, ``keepalive`` twice the servers, HTTP/1.1 with ``Connection ""``.
- **A stand-in docker-gen** on this machine (no docker-gen binary can be had here:
  see ``proxy_image.py``): it lists the containers with nginx-proxy's
  ``DOCKER_CONTAINER_FILTERS`` as the program sets it, through the engine's own
  filter (``docker ps --filter health=healthy --filter health=none``), and renders
  again and reloads nginx on the events docker-gen 0.16 and later watch by
  default: start, stop, die, health_status.
- **The app**: nginx again, answering any method with 200 on port 8000 and
  stopping gracefully (``--stop-signal QUIT``: it finishes the requests in flight,
  as uvicorn and gunicorn do on SIGTERM). Its health check is the program's own
  start-first check (``drainable``, interval and retries as declared) around a
  TCP probe, since the image has no Python.
- **The steps in the engine's order**: create and start the new container, wait
  until it is healthy (the provider's ``wait``), run the program's drain step,
  then delete the old one with its grace (``destroy_grace_seconds``; the engine
  deletes a replaced resource last, pulumi/pulumi#9979).
"""

from __future__ import annotations

import hashlib
import http.client
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.apps.wiring import drain_for
from components.config.reading import parse
from components.foundation.drain import DRAIN_FILE, RENDERED, drainable
from components.model.app import App, HttpProbe
from components.proxy.stack import HEALTH_FILTER
from tests.harness import OPERATOR_SECRETS, Program, as_cli_value, run_program, site_config
from tests.parts import images
from tests.parts.engine import Engine
from tests.parts.side import engine
from tests.parts.tools import wait_until
from tests.proxy.load import Load
from tests.rehearsal.standin import base_image

pytest_plugins = ["tests.parts.fixtures"]
__all__ = ["engine"]
pytestmark = pytest.mark.tools

HOST = "skriptoteket.hule.education"
SERVICE = "skriptoteket-web"
NGINX = Path("/usr/sbin/nginx")
PROBE = HttpProbe(8000, "/", tool="bash").shell()
"""The program's HTTP probe in its bash form: the stand-in's image has no Python."""


def nginx_conf(pid: str, http: str) -> str:
    return (
        f"user root;\nworker_processes 1;\npid {pid};\nerror_log stderr warn;\n"
        f"events {{ worker_connections 512; }}\nhttp {{\n    access_log off;\n{http}}}\n"
    )


def app_conf(answer: str) -> str:
    """The app: every method, every path, on port 8000."""
    return nginx_conf(
        "/run/app.pid",
        "    server {\n        listen 8000;\n        client_max_body_size 0;\n"
        f"        {answer}\n    }}\n",
    )


EDGE_CONF = nginx_conf("/run/nginx.pid", "    include conf.d/*.conf;\n")
APP_CONF = app_conf('return 200 "$hostname\\n";')
BROKEN_CONF = app_conf("return 500;")
"""A new version that listens but answers 500: its check never passes."""


def rollout_image(engine: Engine) -> str:
    assert NGINX.exists(), "nginx is required (apt-get install nginx)"
    base = base_image(engine)
    digest = hashlib.sha256(
        NGINX.read_bytes() + (EDGE_CONF + APP_CONF + BROKEN_CONF + base).encode()
    ).hexdigest()[:12]
    tag = f"hemma-test/rollout-nginx:{digest}"
    if images.image_exists(engine, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="hemma-rollout-image-") as context:
        root = Path(context) / "root"
        for path, text in {
            "etc/nginx/nginx.conf": EDGE_CONF,
            "etc/app/nginx.conf": APP_CONF,
            "etc/app/broken.conf": BROKEN_CONF,
            "etc/nginx/conf.d/default.conf": "",
        }.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        for directory in ("var/lib/nginx", "var/log/nginx", "usr/sbin"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        shutil.copy2(NGINX, root / "usr/sbin/nginx")
        (Path(context) / "Dockerfile").write_text(f"FROM {base}\nCOPY root/ /\n")
        engine.docker("build", "--quiet", "--tag", tag, context)
    return tag


@dataclass
class Renderer:
    """The stand-in docker-gen: the engine's own health filter, re-rendered on events."""

    engine: Engine
    edge: str
    network: str
    filtered: bool = True
    renders: int = 0
    log: list[tuple[float, list[str]]] = field(default_factory=list)
    """When each render happened, and the servers it listed."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _events: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._events = subprocess.Popen(
            [self.engine.client, "events", "--filter", "type=container",
             *(arg for e in ("start", "stop", "die", "health_status")
               for arg in ("--filter", f"event={e}")),
             "--format", "{{.Status}}"],
            stdout=subprocess.PIPE, text=True, env=self.engine.env(),
        )  # fmt: skip
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.render()

    def stop(self) -> None:
        self._stop.set()
        if self._events is not None:
            self._events.terminate()
            self._events.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        assert self._events is not None and self._events.stdout is not None
        for _ in self._events.stdout:
            if self._stop.is_set():
                return
            self.render()

    def listed(self) -> list[str]:
        filters = [arg for f in HEALTH_FILTER.split(",") for arg in ("--filter", f)]
        found = self.engine.docker("ps", "-q", *(filters if self.filtered else []))
        return found.stdout.split()

    def render(self) -> None:
        with self._lock:
            servers: dict[str, list[str]] = {}
            for cid in self.listed():
                got = self.engine.docker(
                    "inspect", "-f",
                    "{{range .Config.Env}}{{println .}}{{end}}"
                    f'{{{{with index .NetworkSettings.Networks "{self.network}"}}}}'
                    "IP={{.IPAddress}}{{end}}",
                    cid, check=False,
                )  # fmt: skip
                if got.returncode != 0:  # gone meanwhile: its event renders again
                    continue
                env = dict(line.split("=", 1) for line in got.stdout.splitlines() if "=" in line)
                if "VIRTUAL_HOST" in env and env.get("IP"):
                    servers.setdefault(env["VIRTUAL_HOST"], []).append(
                        f"{env['IP']}:{env['VIRTUAL_PORT']}"
                    )
            text = ""
            for host in sorted({HOST, *servers}):
                listed = sorted(servers.get(host, []))
                lines = [f"    server {s};" for s in listed] or ["    server 127.0.0.1 down;"]
                if listed:
                    lines.append(f"    keepalive {len(listed) * 2};")
                upstream = host.replace(".", "_")
                text += (
                    f"upstream {upstream} {{\n" + "\n".join(lines) + "\n}\n"
                    f"server {{\n    listen 80;\n    server_name {host};\n"
                    "    client_max_body_size 0;\n"
                    f"    location / {{\n        proxy_pass http://{upstream};\n"
                    "        proxy_http_version 1.1;\n"
                    '        proxy_set_header Connection "";\n    }\n}\n'
                )
            self.engine.docker(
                "exec", "-i", self.edge, "sh", "-c",
                f"cat > {RENDERED}.new && mv {RENDERED}.new {RENDERED} && nginx -s reload",
                input=text, check=False,
            )  # fmt: skip
            self.renders += 1
            self.log.append(
                (time.monotonic(), sorted(s for found in servers.values() for s in found))
            )


@dataclass
class Site:
    engine: Engine
    image: str
    program: Program
    network: str
    edge: str
    port: int
    renderer: Renderer
    made: list[str] = field(default_factory=list)

    @property
    def declared(self) -> dict[str, Any]:
        return self.program.container(SERVICE).inputs

    def app(self, name: str, conf: str = "/etc/app/nginx.conf", start: str = "") -> str:
        """The service's container as the provider creates it (stand-in image), with
        the declared start period unless ``start`` is given."""
        check = self.declared["healthcheck"]
        assert isinstance(check, dict)
        assert check["tests"][1].startswith(f"test ! -e {DRAIN_FILE} && {{ ")
        grace = str(int(self.declared["destroyGraceSeconds"]))
        self.engine.docker(
            "run", "-d", "--name", name, "--network", self.network,
            "--label", f"education.hule.hemma.service={SERVICE}",
            "--env", f"VIRTUAL_HOST={HOST}", "--env", "VIRTUAL_PORT=8000",
            "--health-cmd", drainable(PROBE),
            "--health-interval", check["interval"], "--health-retries", str(int(check["retries"])),
            "--health-timeout", check["timeout"],
            "--health-start-period", start or check["startPeriod"],
            "--stop-signal", "QUIT", "--stop-timeout", grace,
            self.image, "nginx", "-c", conf, "-g", "daemon off;",
        )  # fmt: skip
        self.made.append(name)
        return name

    def workers(self) -> int:
        found = self.engine.docker("exec", self.edge, "pgrep", "-f", "nginx: worker", check=False)
        return len(found.stdout.split())

    def health(self, name: str) -> str:
        return self.engine.inspect(name, "{{.State.Health.Status}}")

    def wait_healthy(self, name: str, timeout: float = 60) -> None:
        """The provider's ``wait``: until healthy, and it does not give up on unhealthy."""
        wait_until(f"{name} is healthy", lambda: self.health(name) == "healthy", timeout)

    def routed(self, name: str) -> bool:
        address = self.engine.inspect(
            name, f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        )
        rendered = self.engine.docker("exec", self.edge, "cat", RENDERED).stdout
        return f"server {address}:" in rendered

    def drain(self, new: str) -> subprocess.CompletedProcess[str]:
        """The program's drain step for ``new``, as the step runs it."""
        service = next(s for app in _catalog() for s in app.services if s.container == SERVICE)
        script = drain_for(self.engine.client, service, self.edge, new)
        return subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=self.engine.env(),
            timeout=300,
        )  # fmt: skip

    def delete(self, name: str) -> None:
        """The provider's delete: stop with the declared grace, then remove."""
        grace = str(int(self.declared["destroyGraceSeconds"]))
        self.engine.docker("stop", "--time", grace, name)
        self.engine.docker("rm", name)


def _catalog() -> tuple[App, ...]:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    return config.apps()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(engine: Engine) -> Iterator[Site]:
    image = rollout_image(engine)
    token = secrets.token_hex(3)
    network, edge, port = f"hm-roll-{token}", f"hm-edge-{token}", free_port()
    engine.docker("network", "create", network)
    engine.docker(
        "run", "-d", "--name", edge, "--network", network, "-p", f"127.0.0.1:{port}:80",
        image, "nginx", "-g", "daemon off;",
    )  # fmt: skip
    renderer = Renderer(engine, edge, network)
    site = Site(engine, image, run_program(), network, edge, port, renderer)
    try:
        renderer.start()
        yield site
    finally:
        renderer.stop()
        engine.docker("rm", "--force", edge, *site.made, check=False)
        engine.docker("network", "rm", network, check=False)


def answers(site: Site) -> bool:
    """nginx serves the host: its config is rendered and its reload has taken effect
    (a rendered file alone is not a reloaded nginx)."""
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=2)
    try:
        connection.request("GET", "/", headers={"Host": HOST, "Connection": "close"})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def old_copy(site: Site) -> str:
    """The service's running copy, serving, before anything changes."""
    old = site.app(f"{SERVICE}-{'0' * 12}")
    site.wait_healthy(old)
    wait_until("nginx routes to the old copy", lambda: site.routed(old), 20)
    wait_until("nginx serves the host", lambda: answers(site), 20)
    # An old worker still accepts for a moment after a reload, with the config from
    # before the old copy was routed: the load starts once only the new one runs.
    wait_until("nginx's old workers exit", lambda: site.workers() == 1, 20)
    return old


def assert_no_failure(load: Load, what: str, renderer: Renderer) -> None:
    print(f"\n{what}: {load.summary()}")
    assert load.sent >= 40, "the load loop ran"
    failed = [(round(f.at, 2), f.method, f.error) for f in load.failures]
    assert failed == [], f"{load.summary()}; renders: {renderer.log}"


def test_the_delete_first_baseline_fails_requests(site: Site) -> None:
    old = old_copy(site)
    with Load(site.port, HOST) as load:
        time.sleep(1)
        site.delete(old)
        new = site.app(f"{SERVICE}-{'1' * 12}")
        site.wait_healthy(new)
        wait_until("nginx routes to the new copy", lambda: site.routed(new), 20)
        time.sleep(1)
    print(f"\ndelete-first (baseline): {load.summary()}")
    assert load.failures, "the old copy is gone before the new one is healthy"


def test_a_start_first_deploy_fails_no_request_even_after_a_failed_one(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start-first deploy whose new copy never turns healthy, the ``up`` run again,
    and the deploy of a fixed copy, in the engine's order (pulumi/pulumi
    ``pkg/resource/deploy``, read at 1b59498). The last is the plain start-first
    deploy: a healthy new copy, the drain, then the engine's deletes.

    1. The failed ``up``: the provider's create sets the container's ID and then
       fails its wait (terraform-provider-docker v4.5.0, ``resourceDockerContainerCreate``);
       the bridge reports it as an init error with that ID (pulumi-terraform-bridge
       ``initializationError``); the engine records the new copy with its init
       errors and marks the old one for deletion (``CreateStep.Apply``), but a
       deletion runs only after every registration (``performPostSteps``), and the
       failed step stops the update first. So both copies run, and the drain step,
       which depends on the new copy, does not run.
    2. The next ``up`` with the same config: an init error alone gives an empty
       update (``step_generator``: "attempt to continue awaiting initialization"),
       and the provider's update does not wait for health again. The drain step's
       trigger (the new copy's ID) has changed, so it runs: it waits in vain until
       nginx routes to the broken copy and fails the ``up`` without touching the old.
    3. The ``up`` with a fixed image: a new name, a healthy copy, and a drain of
       every other labelled copy; then the engine deletes the old copy and the
       broken one, each with its grace.
    """
    monkeypatch.setattr("components.apps.wiring.DRAIN_TIMEOUT", 8)
    old = old_copy(site)
    with Load(site.port, HOST) as load:
        time.sleep(1)
        # A start period longer than the drain's deadline: the broken copy is still
        # starting when the fixed one drains it, and must not hold the drain up.
        broken = site.app(f"{SERVICE}-{'2' * 12}", conf="/etc/app/broken.conf", start="600s")
        with pytest.raises(TimeoutError):
            site.wait_healthy(broken, timeout=10)
        assert not site.routed(broken) and site.routed(old)

        again = site.drain(broken)
        assert again.returncode == 1, again.stdout + again.stderr
        assert f"timed out waiting until nginx routes to {broken}" in again.stderr
        assert site.health(old) == "healthy" and site.routed(old)
        untouched = site.engine.docker("exec", old, "test", "-e", DRAIN_FILE, check=False)
        assert untouched.returncode == 1, "the old copy was not drained"

        monkeypatch.undo()  # the declared deadline: a real drain takes about 30 s
        fixed = site.app(f"{SERVICE}-{'3' * 12}")
        site.wait_healthy(fixed)
        drained = site.drain(fixed)
        assert drained.returncode == 0, drained.stderr
        assert "drained 2 old copies" in drained.stdout
        assert site.health(broken) == "starting", "drained without waiting it out"
        assert site.health(old) == "unhealthy"
        assert not site.routed(old) and not site.routed(broken)
        site.delete(old)
        site.delete(broken)
        time.sleep(1)
    assert_no_failure(load, "a failed deploy, its rerun, then a fixed one", site.renderer)
    assert len(load.resent) <= 2 * site.renderer.renders, "one per reload and keep-alive loop"
    running = site.engine.docker(
        "ps", "-q", "--filter", f"label=education.hule.hemma.service={SERVICE}"
    ).stdout.split()
    assert running == [site.engine.inspect(fixed, "{{slice .Id 0 12}}")]


def test_without_the_health_filter_a_broken_new_copy_fails_requests(site: Site) -> None:
    """The filter taken out: nginx routes to the copy whose check fails."""
    site.renderer.filtered = False
    old_copy(site)
    with Load(site.port, HOST) as load:
        time.sleep(1)
        broken = site.app(f"{SERVICE}-{'2' * 12}", conf="/etc/app/broken.conf")
        wait_until("nginx routes to the broken copy", lambda: site.routed(broken), 20)
        time.sleep(2)
    print(f"\nno health filter, broken new copy: {load.summary()}")
    assert any("status 500" in f.error for f in load.failures)
