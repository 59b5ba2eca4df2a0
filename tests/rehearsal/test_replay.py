"""A rehearsal of ``pulumi up``: everything the program declares, replayed on a real
Docker engine with stand-in images (``replay.py``, ``standin.py``), a real PostgreSQL
in place of shared-postgres, and the program's SSH commands run over a real sshd.

The program is the whole server, Class Hub switched on (its containers, internal
network, routes and migrations on top of everything the default configuration
runs): the default configuration is a subset of it. It runs on two machines:
HuleEdu's research services are placed on a second one, ``gpu``, whose own private
engine (``second_engine``) gets what its provider declares, and Hemma's engine the
rest. The replay happens once for the module; every test reads the same running
site.
This machine boots no systemd, so the unit scripts run against a recording
``systemctl`` in a sandbox root (``HEMMA_ROOT``), with the real sudo.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (
    SECOND_HOST,
    SECOND_HOST_PLACED,
    Declared,
    Program,
    on_machine,
    run_program,
    service_name,
    site_config,
    stack_file_config,
    two_host_config,
    with_classhub,
)
from tests.parts.engine import Engine
from tests.parts.ssh import SshServer
from tests.parts.tools import TIMINGS
from tests.postgres_server import database_sql, grant_sql, pg_tool, role_sql
from tests.proxy.files import RELOAD_STEP, SETTLE_STEP
from tests.rehearsal.replay import (
    DOCKER_SOCKET,
    Replayed,
    go_duration_ns,
    replayed,
    upload_bytes,
    upload_mode,
)
from tests.rehearsal.standin import (
    ARGV_FILE,
    EXEC_LOG,
    build_standin,
    build_standins,
    names_of,
    references,
)

pytest_plugins = ["tests.parts.fixtures"]

STACK = stack_file_config()
PROXY = str(STACK["proxy"]["containerName"])
POSTGRES = str(STACK["postgres"]["containerName"])
PUBLIC_NETWORK = "hule-network"
ALERTING_NETWORK = "observability_internal_network"
INTERNAL_NETWORK = "huleedu_internal_network"
# The runbooks' network table: these answer on the internal network and nowhere else.
INTERNAL_SERVICES = {("kafka", 9092), ("redis", 6379)}
PUBLIC_PORTS = {80, 443}
RUNNER_TARGET = ("nlp_service", 8000)
HEALTH = "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
HEALTH_CAP = 120.0
# An unknown name goes to the engine's silent resolver; one short try is enough
# to tell "no such name here" from a name that resolves.
QUICK_RESOLVER = {"RES_OPTIONS": "timeout:1 attempts:1"}
COMMAND = "command:remote:Command"


def envs(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs") or [])


def networks_of(container: Declared) -> dict[str, list[str]]:
    return {
        str(n["name"]): list(n.get("aliases") or [])
        for n in container.inputs.get("networksAdvanced") or []
    }


def host_port(value: str) -> tuple[str, int]:
    """``kafka:9092`` or ``redis://redis:6379/0`` -> (host, port)."""
    parsed = urllib.parse.urlsplit(value if "//" in value else f"tcp://{value}")
    assert parsed.hostname and parsed.port, value
    return parsed.hostname, parsed.port


# --- the replayed site --------------------------------------------------------


def replayed_config() -> dict[str, Any]:
    return two_host_config(with_classhub(site_config()))


@pytest.fixture(scope="module")
def whole() -> Program:
    """Everything the program declares, on both machines."""
    return run_program(replayed_config())


@pytest.fixture(scope="module")
def program(whole: Program) -> Program:
    """What Hemma's Docker runs, and every resource that is not Docker's."""
    return on_machine(whole, "hemma")


@pytest.fixture(scope="module")
def gpu_program(whole: Program) -> Program:
    """What the second machine's Docker runs."""
    return on_machine(whole, SECOND_HOST)


def test_the_replay_is_the_whole_server_class_hub_included(whole: Program) -> None:
    names = set(whole.services)
    assert {"classhub_web", "helper_web", "classhub_minio", "classhub_ollama"} <= names
    assert names >= set(run_program(site_config()).services)


def test_the_second_machine_runs_the_research_services_and_hemma_the_rest(
    whole: Program, program: Program, gpu_program: Program
) -> None:
    assert set(gpu_program.services) == set(SECOND_HOST_PLACED)
    assert set(program.services) == set(whole.services) - set(SECOND_HOST_PLACED)


@pytest.fixture(scope="module")
def standin_image(engine: Engine) -> str:
    """The stand-in serving nothing (clients, probes, the runner)."""
    return build_standin(engine)


@pytest.fixture(scope="module")
def standins(engine: Engine, program: Program) -> dict[str, str]:
    """Docker name -> its stand-in, listening where that container's declaration says."""
    return build_standins(engine, program, real={POSTGRES})


@pytest.fixture(scope="module")
def site(
    engine: Engine, program: Program, standin_image: str, standins: dict[str, str], pg_image: str
) -> Iterator[Replayed]:
    with replayed(
        engine, program, default_image=standin_image, images={**standins, POSTGRES: pg_image}
    ) as replay:
        for name, paths in replay.skipped_devices.items():
            warnings.warn(
                f"{name}: devices {paths} are not on this machine (no GPU): left out",
                stacklevel=1,
            )
        yield replay
    TIMINGS["rehearsal: slowest healthy"] = max(replay.healthy_after.values(), default=0.0)
    left = {
        "containers": {
            c["Names"][0].lstrip("/")
            for c in replay.api.call("GET", "/containers/json", query={"all": "1"})
        }
        & set(replay.ids),
        # A network the engine refuses to remove with nothing attached is named in a
        # loud line by the teardown, and the next replay uses it.
        "networks": {n["Name"] for n in replay.api.call("GET", "/networks")}
        & (set(replay.networks) - set(replay.kept_networks)),
        "volumes": {v["Name"] for v in replay.api.call("GET", "/volumes")["Volumes"] or []}
        & set(replay.volumes),
    }
    assert not any(left.values()), f"the replay left {left}"


@pytest.fixture(scope="module")
def gpu_site(second_engine: Engine, gpu_program: Program) -> Iterator[Replayed]:
    """The second machine's side, on its own engine."""
    standins = build_standins(second_engine, gpu_program)
    with replayed(
        second_engine, gpu_program, default_image=build_standin(second_engine), images=standins
    ) as replay:
        yield replay


def test_each_container_runs_on_its_own_machines_engine_and_answers_its_check(
    healthy: Replayed, gpu_site: Replayed
) -> None:
    """Placed on ``gpu``: created on the second engine, healthy there by its declared
    check, and absent from Hemma's; and the other way round."""

    def names(engine: Engine) -> set[str]:
        listed = engine.docker("ps", "--all", "--format", "{{.Names}}").stdout.split()
        return set(listed)

    on_gpu, on_hemma = names(gpu_site.engine), names(healthy.engine)
    assert set(gpu_site.ids) == set(SECOND_HOST_PLACED) <= on_gpu
    assert not on_gpu & set(healthy.ids)
    assert not on_hemma & set(SECOND_HOST_PLACED)
    for name in SECOND_HOST_PLACED:
        gpu_site.engine.wait_for(name, HEALTH, "healthy", timeout=HEALTH_CAP)
        declared = gpu_site.declared(name).inputs["healthcheck"]["tests"]
        assert gpu_site.inspect(name)["Config"]["Healthcheck"]["Test"] == declared
        network = gpu_site.inspect(name)["NetworkSettings"]["Networks"]
        assert set(network) == {INTERNAL_NETWORK}
    assert INTERNAL_NETWORK in gpu_site.networks and "huleedu_hf_cache" in gpu_site.volumes


@pytest.fixture(scope="module")
def healthy(site: Replayed) -> Replayed:
    """The site once every container, waited on at create or not, is healthy."""
    for name, plan in site.plans.items():
        if not plan.wait:
            site.engine.wait_for(name, HEALTH, "healthy", timeout=HEALTH_CAP)
    return site


class Probes:
    """Client containers of the rehearsal's own, each on one network only."""

    def __init__(self, engine: Engine, image: str) -> None:
        self.engine = engine
        self.image = image
        self.names: list[str] = []

    def on(self, network: str) -> str:
        name = f"rehearsal-probe-{network}"
        if name not in self.names:
            self.engine.docker(
                "run", "-d", "--name", name, "--network", network,
                "--entrypoint", "sleep", self.image, "infinity",
            )  # fmt: skip
            self.names.append(name)
        return name

    def remove(self) -> None:
        if self.names:
            self.engine.docker("rm", "--force", *self.names, check=False)


@pytest.fixture(scope="module")
def probes(site: Replayed, standin_image: str) -> Iterator[Probes]:
    made = Probes(site.engine, standin_image)
    try:
        yield made
    finally:
        made.remove()


def can_resolve(site: Replayed, container: str, name: str) -> bool:
    done = site.exec(container, "getent", "hosts", name, env=QUICK_RESOLVER, check=False)
    return done.returncode == 0


def tcp_answers(site: Replayed, container: str, host: str, port: int) -> bool:
    done = site.exec(
        container,
        "timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}",
        env=QUICK_RESOLVER, check=False,
    )  # fmt: skip
    return done.returncode == 0


def http_status(site: Replayed, container: str, url: str) -> str:
    done = site.exec(
        container, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
        "--max-time", "5", url, check=False,
    )  # fmt: skip
    return done.stdout.strip() or done.stderr.strip()


# --- containers ----------------------------------------------------------------


def test_every_container_runs_and_turns_healthy_by_its_declared_check(
    healthy: Replayed,
) -> None:
    problems = []
    for container in healthy.program.containers:
        name = container.inputs["name"]
        state = healthy.inspect(name)
        declared = container.inputs["healthcheck"]["tests"]
        health = state["State"].get("Health") or {}
        log = health.get("Log") or [{}]
        if state["Config"]["Healthcheck"]["Test"] != declared:
            problems.append(f"{name}: Docker runs {state['Config']['Healthcheck']['Test']}")
        if not state["State"]["Running"] or health.get("Status") != "healthy":
            problems.append(f"{name}: {state['State']['Status']}, {health.get('Status')}")
        elif log[-1].get("ExitCode") != 0:
            problems.append(f"{name}: last check exited {log[-1].get('ExitCode')}")
    assert not problems, "\n".join(problems)
    assert {c.inputs["name"] for c in healthy.program.containers} == set(healthy.ids)


def test_the_health_checks_pass_only_because_the_service_is_there(
    site: Replayed, standin_image: str, standins: dict[str, str]
) -> None:
    """Each declared check, run in a stand-in that serves nothing (no ports, no
    docker-gen, no nginx PID file), fails: the checks are real, not vacuous."""
    idle = "rehearsal-idle"
    site.engine.docker(
        "run", "-d", "--name", idle, "--network", "none",
        "--entrypoint", "sleep", standin_image, "infinity",
    )  # fmt: skip
    try:
        passed = []
        checks = {
            tuple(c.inputs["healthcheck"]["tests"]): c.inputs["name"]
            for c in site.program.containers
            if c.inputs["name"] in standins
        }
        for test, name in checks.items():
            assert test[0] == "CMD-SHELL", f"{name}: {test}"
            done = site.exec(idle, "/bin/sh", "-c", test[1], check=False, timeout=30)
            if done.returncode == 0:
                passed.append(f"{name}: {test[1]}")
        assert checks
        assert not passed, "these checks pass with nothing to check:\n" + "\n".join(passed)
    finally:
        site.engine.docker("rm", "--force", idle, check=False)


def test_the_engine_holds_the_declared_containers(site: Replayed) -> None:
    """What Docker stored is what was declared (and what the provider would read back)."""
    problems = []
    for container in site.program.containers:
        i = container.inputs
        name = i["name"]
        got = site.inspect(name)
        config, host = got["Config"], got["HostConfig"]
        expect_check = i["healthcheck"]
        stored_check = config["Healthcheck"]
        for key, stored in (
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("startPeriod", "StartPeriod"),
        ):
            if stored_check.get(stored, 0) != go_duration_ns(expect_check.get(key, "0s")):
                problems.append(f"{name}: healthcheck {key} {stored_check.get(stored)}")
        checks = {
            "env": set(i.get("envs") or []) <= set(config["Env"] or []),
            "labels": {x["label"]: x["value"] for x in i.get("labels") or []}.items()
            <= (config["Labels"] or {}).items(),
            "restart": host["RestartPolicy"]["Name"] == i.get("restart", "no"),
            "log": host["LogConfig"]
            == {"Type": i.get("logDriver", "json-file"), "Config": i.get("logOpts") or {}},
            "hosts": (host["ExtraHosts"] or [])
            == [f"{h['host']}:{h['ip']}" for h in i.get("hosts") or []],
            "groups": (host["GroupAdd"] or []) == list(i.get("groupAdds") or []),
            "networks": set(got["NetworkSettings"]["Networks"])
            == (set(networks_of(container)) or {"bridge"}),
        }
        for network, aliases in networks_of(container).items():
            stored_aliases = got["NetworkSettings"]["Networks"][network]["Aliases"] or []
            checks[f"aliases on {network}"] = set(aliases) <= set(stored_aliases)
        if name != POSTGRES:
            argv = json.loads(site.exec(name, "cat", ARGV_FILE).stdout)
            checks["command"] = argv == [*(i.get("entrypoints") or []), *(i.get("command") or [])]
        problems += [f"{name}: {what}" for what, ok in checks.items() if not ok]
    assert not problems, "\n".join(problems)


# --- reachability ----------------------------------------------------------------


def test_nginx_proxy_reaches_every_routed_container_on_its_virtual_port(
    healthy: Replayed,
) -> None:
    proxy_networks = set(networks_of(healthy.declared(PROXY)))
    routed = [c for c in healthy.program.containers if "VIRTUAL_HOST" in envs(c)]
    assert routed
    problems = []
    for container in routed:
        name = container.inputs["name"]
        port = int(envs(container).get("VIRTUAL_PORT", "80"))
        shared = {n: a for n, a in networks_of(container).items() if n in proxy_networks}
        if not shared:
            problems.append(f"{name}: on none of {PROXY}'s networks {sorted(proxy_networks)}")
            continue
        for host in sorted({name, *(a for aliases in shared.values() for a in aliases)}):
            status = http_status(healthy, PROXY, f"http://{host}:{port}/")
            if status != "200":
                problems.append(f"{PROXY} -> {host}:{port}: {status}")
    assert not problems, "\n".join(problems)


def test_every_app_with_a_database_url_reaches_shared_postgres_by_its_alias(
    healthy: Replayed, probes: Probes
) -> None:
    assert POSTGRES in networks_of(healthy.declared(POSTGRES))[PUBLIC_NETWORK]
    client = probes.on(PUBLIC_NETWORK)
    ready = healthy.exec(client, "pg_isready", "-h", POSTGRES, "-p", "5432", "-t", "5", check=False)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    users = [c for c in healthy.program.containers if "DATABASE_URL" in envs(c)]
    assert users
    problems = []
    for container in users:
        name = container.inputs["name"]
        url = urllib.parse.urlsplit(envs(container)["DATABASE_URL"])
        if url.hostname != POSTGRES:
            problems.append(f"{name}: DATABASE_URL names {url.hostname}, not {POSTGRES}")
            continue
        done = healthy.exec(
            name, "pg_isready", "-h", url.hostname, "-p", str(url.port or 5432), "-t", "5",
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            problems.append(f"{name}: {done.stdout.strip()} {done.stderr.strip()}")
    assert not problems, "\n".join(problems)


def test_kafka_and_redis_answer_inside_the_internal_network_only(
    healthy: Replayed, probes: Probes
) -> None:
    named: set[tuple[str, int]] = set()
    for container in healthy.program.containers:
        for key in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
            if key in envs(container) and INTERNAL_NETWORK in networks_of(container):
                named.update(host_port(v) for v in envs(container)[key].split(","))
    assert named >= INTERNAL_SERVICES, f"the apps name {named}"

    inside = probes.on(INTERNAL_NETWORK)
    outside = probes.on(PUBLIC_NETWORK)
    assert set(networks_of(healthy.declared(PROXY))) == {PUBLIC_NETWORK}
    problems = []
    for host, port in sorted(INTERNAL_SERVICES):
        if not tcp_answers(healthy, inside, host, port):
            problems.append(f"{host}:{port} does not answer on {INTERNAL_NETWORK}")
        for client in (outside, PROXY):
            if can_resolve(healthy, client, host):
                problems.append(f"{host} resolves from {client}, only on {PUBLIC_NETWORK}")
    assert not problems, "\n".join(problems)


def test_alertmanager_and_node_exporter_answer_prometheus_and_grafana_only(
    healthy: Replayed, probes: Probes
) -> None:
    """Alertmanager's API takes silences from anyone who reaches it: no container on
    hule-network, nginx-proxy included, even resolves it or node-exporter."""
    alerting = {"alertmanager": 9093, "node_exporter": 9100}
    only_there = [
        c.inputs["name"]
        for c in healthy.program.containers
        if set(networks_of(c)) == {ALERTING_NETWORK}
    ]
    assert sorted(only_there) == sorted(alerting)
    outside = probes.on(PUBLIC_NETWORK)
    problems = []
    for name, port in sorted(alerting.items()):
        for client in ("prometheus", "grafana"):
            if not tcp_answers(healthy, client, name, port):
                problems.append(f"{name}:{port} does not answer {client}")
        for client in (outside, PROXY, "skriptoteket-web"):
            if can_resolve(healthy, client, name):
                problems.append(f"{name} resolves from {client} on {PUBLIC_NETWORK}")
    assert not problems, "\n".join(problems)


def test_every_container_reaches_what_its_settings_name(healthy: Replayed) -> None:
    """Each NAME:PORT in a container's env and uploaded files that names a declared
    container (kafka:9092, redis://redis:6379, a Prometheus target, a Grafana
    datasource, Promtail's Loki) answers from inside that container."""
    names = set().union(*(names_of(c) for c in healthy.program.containers))
    problems, tried = [], 0
    for container in healthy.program.containers:
        name = container.inputs["name"]
        for host, port in sorted(references(container, names)):
            tried += 1
            if not tcp_answers(healthy, name, host, port):
                problems.append(f"{name} -> {host}:{port} does not answer")
    assert tried
    assert not problems, "\n".join(problems)


def test_containers_reach_the_public_hostnames_they_map_to_the_host(healthy: Replayed) -> None:
    """A public hostname mapped to host-gateway (the blackbox probes' way out) reaches
    nginx-proxy's published 443 through the host's address on the bridge."""
    public = set(STACK["hostnames"].values())
    problems, tried = [], 0
    for container in healthy.program.containers:
        name = container.inputs["name"]
        for host in container.inputs.get("hosts") or []:
            if host["host"] in public and host["ip"] == "host-gateway":
                tried += 1
                if not tcp_answers(healthy, name, host["host"], 443):
                    problems.append(f"{name} -> {host['host']}:443 does not answer")
    assert tried, "no container maps a public hostname to host-gateway any more"
    assert not problems, "\n".join(problems)


RUN_RUNNER = r"""
set -euo pipefail
api() {
  curl -sS --fail-with-body --unix-socket /var/run/docker.sock \
    -H 'Content-Type: application/json' "$@"
}
id=$(api -X POST -d @- "http://localhost/containers/create?name=$1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Id"])')
api -X POST "http://localhost/containers/$id/start"
api -X POST "http://localhost/containers/$id/wait"
"""


def test_a_skriptoteket_runner_reaches_the_nlp_service(
    healthy: Replayed, standin_image: str
) -> None:
    """Started the way skriptoteket-web starts its runners: through its Docker socket,
    from RUNNER_IMAGE, on RUNNER_NETWORK."""
    web = healthy.declared("skriptoteket-web")
    image, network = envs(web)["RUNNER_IMAGE"], envs(web)["RUNNER_NETWORK"]
    assert network == INTERNAL_NETWORK
    healthy.engine.docker("tag", standin_image, image)
    host, port = RUNNER_TARGET
    runner = "rehearsal-runner"
    body = {
        "Image": image,
        "Entrypoint": ["curl", "-fsS", "-o", "/dev/null", "--max-time", "5"],
        "Cmd": [f"http://{host}:{port}/"],
        "HostConfig": {"NetworkMode": network},
    }
    try:
        done = healthy.exec(
            "skriptoteket-web", "bash", "-c", RUN_RUNNER, "run-runner", runner,
            input=json.dumps(body), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["StatusCode"] == 0, healthy.engine.docker(
            "logs", runner, check=False
        ).stderr
    finally:
        healthy.engine.docker("rm", "--force", runner, check=False)
        healthy.engine.docker("rmi", image, check=False)


# --- published ports ---------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    ip: str
    port: int
    container: str


def published(program: Program) -> list[Binding]:
    return [
        Binding(str(p.get("ip", "0.0.0.0")), int(p["external"]), c.inputs["name"])
        for c in program.containers
        for p in c.inputs.get("ports") or []
    ]


def public_addresses() -> list[str]:
    """This machine's own addresses on its outward interfaces (not loopback, not the
    engine's bridges or veths)."""
    found = []
    for family in ("-4", "-6"):
        out = subprocess.run(
            ["ip", "-o", family, "addr", "show", "scope", "global"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            words = line.split()
            interface, address = words[1], words[3].split("/")[0]
            if interface == "docker0" or interface.startswith(("br-", "veth")):
                continue
            found.append(address)
    return found


def connects(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((address, port))
        except OSError:
            return False
        return True


def http_get_status(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
         f"http://{host}:{port}/"],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip() or done.stderr.strip()


def test_only_80_and_443_answer_on_a_public_address(healthy: Replayed) -> None:
    addresses = public_addresses()
    if not any(":" not in a for a in addresses):
        pytest.fail(
            "this machine has no IPv4 address besides loopback and the engine's bridges, "
            f"so what a public address answers cannot be shown (found {addresses})"
        )
    bindings = published(healthy.program)
    ports = sorted({b.port for b in bindings})
    assert {b.port for b in bindings if b.ip in {"0.0.0.0", "::"}} == PUBLIC_PORTS
    problems = []
    for address in addresses:
        v6 = ":" in address
        wildcard = "::" if v6 else "0.0.0.0"
        answering = {p for p in ports if connects(address, p)}
        expected = {b.port for b in bindings if b.ip == wildcard}
        if v6 and not expected:
            continue
        if answering != PUBLIC_PORTS:
            problems.append(f"{address}: {sorted(answering)} answer, not {sorted(PUBLIC_PORTS)}")
        for port in sorted(answering & PUBLIC_PORTS):
            status = http_get_status(address, port)
            if status != "200":
                problems.append(f"{address}:{port}: {status}")
    assert not problems, "\n".join(problems)


def test_every_localhost_port_answers_on_127_0_0_1(healthy: Replayed) -> None:
    local = [b for b in published(healthy.program) if b.ip == "127.0.0.1"]
    assert local
    problems = []
    for binding in local:
        if binding.container == POSTGRES:
            done = subprocess.run(
                [pg_tool("pg_isready"), "-h", "127.0.0.1", "-p", str(binding.port), "-t", "5"],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                problems.append(f"{binding}: {done.stdout.strip()}")
        elif http_get_status("127.0.0.1", binding.port) != "200":
            problems.append(f"{binding}: no answer on 127.0.0.1")
    assert not problems, "\n".join(problems)


def docker_proxies(engine: Engine) -> set[tuple[str, int]]:
    """(host-ip, host-port) of each docker-proxy the engine runs."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid != engine.pid or not argv[0].endswith(b"docker-proxy"):
            continue
        args = [a.decode() for a in argv]
        found.add((args[args.index("-host-ip") + 1], int(args[args.index("-host-port") + 1])))
    return found


def test_docker_proxy_does_the_publishing(healthy: Replayed) -> None:
    """With --iptables=false there is no DNAT: each published port is a docker-proxy
    of this engine listening on the declared address."""
    dockerd = Path(f"/proc/{healthy.engine.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--iptables=false" in dockerd
    declared = {(b.ip, b.port) for b in published(healthy.program)}
    assert docker_proxies(healthy.engine) == declared


# --- files and mounts --------------------------------------------------------------


def test_every_upload_lands_at_its_path_with_its_content(healthy: Replayed) -> None:
    problems = []
    count = 0
    for container in healthy.program.containers:
        name = container.inputs["name"]
        for upload in container.inputs.get("uploads") or []:
            count += 1
            path = upload["file"]
            done = healthy.exec(name, "cat", path, check=False)
            if done.returncode != 0:
                problems.append(f"{name}:{path}: {done.stderr.strip()}")
                continue
            if done.stdout.encode() != upload_bytes(upload):
                problems.append(f"{name}:{path}: content differs")
            mode = healthy.exec(name, "stat", "-c", "%a", path).stdout.strip()
            if int(mode, 8) != upload_mode(upload):
                problems.append(f"{name}:{path}: mode {mode}")
    assert count
    assert not problems, "\n".join(problems)


def mounts(site: Replayed, name: str) -> dict[str, dict[str, Any]]:
    return {m["Destination"]: m for m in site.inspect(name)["Mounts"]}


def test_every_named_volume_is_mounted_at_its_declared_path(site: Replayed) -> None:
    declared_volumes = {
        v.inputs["name"] for v in site.program.of_type("docker:index/volume:Volume")
    }
    used = set()
    problems = []
    for container in site.program.containers:
        name = container.inputs["name"]
        stored = mounts(site, name)
        for volume in container.inputs.get("volumes") or []:
            if not volume.get("volumeName"):
                continue
            used.add(volume["volumeName"])
            mount = stored.get(volume["containerPath"], {})
            if (mount.get("Type"), mount.get("Name")) != ("volume", volume["volumeName"]):
                problems.append(f"{name}: {volume['containerPath']} holds {mount}")
            elif mount["RW"] == bool(volume.get("readOnly")):
                problems.append(f"{name}: {volume['volumeName']} RW {mount['RW']}")
        extra = set(stored) - {v["containerPath"] for v in container.inputs.get("volumes") or []}
        if extra:
            problems.append(f"{name}: mounts nobody declared at {sorted(extra)}")
    assert used <= declared_volumes, f"used but not declared: {used - declared_volumes}"
    assert not problems, "\n".join(problems)


def test_the_docker_socket_is_read_only_except_for_skriptoteket_web(site: Replayed) -> None:
    writable, problems = set(), []
    for container in site.program.containers:
        name = container.inputs["name"]
        for volume in container.inputs.get("volumes") or []:
            if volume.get("hostPath") != DOCKER_SOCKET:
                continue
            mount = mounts(site, name)[volume["containerPath"]]
            if (mount["Type"], mount["Source"]) != ("bind", str(site.engine.socket)):
                problems.append(f"{name}: {mount}")
            if mount["RW"] == bool(volume.get("readOnly")):
                problems.append(f"{name}: declared readOnly {volume.get('readOnly')}, RW {mount}")
            if mount["RW"]:
                writable.add(service_name(container))
    assert not problems, "\n".join(problems)
    assert writable == {"skriptoteket-web"}


# --- a real shared-postgres --------------------------------------------------------


def admin_password(site: Replayed) -> str:
    return envs(site.declared(POSTGRES))["POSTGRES_PASSWORD"]


@pytest.fixture(scope="module")
def databases(healthy: Replayed) -> Replayed:
    """The program's roles, databases and grants, applied as the provider does."""
    program = healthy.program
    statements = [
        *(role_sql(r) for r in program.of_type("postgresql:index/role:Role")),
        *(database_sql(d) for d in program.of_type("postgresql:index/database:Database")),
        *(grant_sql(g) for g in program.of_type("postgresql:index/grant:Grant")),
    ]
    done = healthy.exec(
        POSTGRES, "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q",
        input="".join(f"{s};\n" for s in statements),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return healthy


def psql(site: Replayed, client: str, url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return site.exec(
        client, "psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql, check=False
    )  # fmt: skip


def libpq(url: str) -> str:
    """SQLAlchemy's ``postgresql+asyncpg://`` as libpq reads it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def test_shared_postgres_runs_the_pg_image_with_its_declared_settings(
    healthy: Replayed, pg_image: str, probes: Probes
) -> None:
    declared = healthy.declared(POSTGRES).inputs
    got = healthy.inspect(POSTGRES)
    assert got["Config"]["Image"] == pg_image
    assert set(declared["envs"]) <= set(got["Config"]["Env"])
    assert got["Config"]["Healthcheck"]["Test"] == declared["healthcheck"]["tests"]
    assert got["State"]["Health"]["Status"] == "healthy"
    (volume,) = declared["volumes"]
    mount = mounts(healthy, POSTGRES)[volume["containerPath"]]
    assert (mount["Type"], mount["Name"]) == ("volume", volume["volumeName"])
    # initdb ran with the declared password: it logs in over the network, from the
    # shared network and on the published port (where the provider's tunnel ends).
    admin = f"postgresql://postgres:{admin_password(healthy)}@{POSTGRES}:5432/postgres"
    done = psql(healthy, probes.on(PUBLIC_NETWORK), admin, "SELECT current_user")
    assert done.stdout.strip() == "postgres", done.stderr
    (port,) = [b.port for b in published(healthy.program) if b.container == POSTGRES]
    local = subprocess.run(
        [pg_tool("psql"),
         f"postgresql://postgres:{admin_password(healthy)}@127.0.0.1:{port}/postgres",
         "-At", "-c", "SELECT 1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert local.stdout.strip() == "1", local.stderr


def database_urls(program: Program) -> dict[str, str]:
    return {
        c.inputs["name"]: envs(c)["DATABASE_URL"]
        for c in program.containers
        if "DATABASE_URL" in envs(c)
    }


def test_every_connection_string_logs_in_and_creates_a_table(
    databases: Replayed, probes: Probes
) -> None:
    client = probes.on(PUBLIC_NETWORK)
    problems = []
    urls = database_urls(databases.program)
    assert urls
    for name, url in sorted(urls.items()):
        parsed = urllib.parse.urlsplit(url)
        table = "rehearsal_" + re.sub(r"\W", "_", name)
        done = psql(
            databases, client, libpq(url),
            f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1); "
            f"SELECT current_user || ' ' || current_database() FROM {table}",
        )  # fmt: skip
        expected = f"{parsed.username} {parsed.path.lstrip('/')}"
        if done.returncode != 0 or done.stdout.strip() != expected:
            problems.append(f"{name}: {done.stdout.strip()} {done.stderr.strip()}")
    assert not problems, "\n".join(problems)


def test_no_app_role_connects_to_a_database_it_does_not_own(
    databases: Replayed, probes: Probes
) -> None:
    client = probes.on(PUBLIC_NETWORK)
    owners = {
        d.inputs["name"]: d.inputs["owner"]
        for d in databases.program.of_type("postgresql:index/database:Database")
    }
    roles: dict[str, urllib.parse.SplitResult] = {}
    for url in database_urls(databases.program).values():
        parsed = urllib.parse.urlsplit(libpq(url))
        roles[str(parsed.username)] = parsed
    assert len(roles) >= 2, f"only {sorted(roles)} have connection strings"
    problems, tried = [], 0
    for role, parsed in sorted(roles.items()):
        for database, owner in sorted(owners.items()):
            if owner == role:
                continue
            tried += 1
            url = parsed._replace(path=f"/{database}").geturl()
            done = psql(databases, client, url, "SELECT 1")
            if done.returncode == 0 or "permission denied for database" not in done.stderr:
                problems.append(f"{role} -> {database}: {done.stdout.strip()} {done.stderr}")
    assert tried
    assert not problems, "\n".join(problems)


# --- SSH commands for real -----------------------------------------------------------


@pytest.fixture(scope="module")
def ssh_docker(ssh_server: SshServer) -> str:
    path = ssh_server.ssh("command -v docker").stdout.strip()
    assert path.startswith("/"), path
    return path


@pytest.fixture(scope="module")
def ssh_program(program: Program, ssh_docker: str) -> Program:
    """The program with ``dockerPath`` set to the test user's docker CLI."""
    adjusted = on_machine(run_program({**replayed_config(), "dockerPath": ssh_docker}), "hemma")
    assert containers_by_name(adjusted) == containers_by_name(program), (
        "dockerPath changes the containers: the replayed site does not stand for it"
    )
    return adjusted


def containers_by_name(program: Program) -> dict[str, dict[str, Any]]:
    return {c.inputs["name"]: c.inputs for c in program.containers}


def exec_log(site: Replayed, name: str) -> list[dict[str, Any]]:
    done = site.exec(name, "cat", EXEC_LOG, check=False)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def container_steps(program: Program) -> list[Declared]:
    """Remote commands that run something in a container with docker exec: the
    migrations, and the like (Grafana's password reset). The proxy's two steps need
    a real nginx: tests/proxy/test_reload_on_engine.py runs them."""
    return [
        c
        for c in program.of_type(COMMAND)
        if c.name not in (RELOAD_STEP, SETTLE_STEP)
        and re.search(r"^container=", c.inputs.get("create", ""), re.M)
        and '"$docker" exec' in c.inputs["create"]
    ]


def test_the_container_steps_run_over_ssh_and_reach_their_containers(
    healthy: Replayed, ssh_server: SshServer, ssh_program: Program, ssh_docker: str
) -> None:
    steps = container_steps(ssh_program)
    migrations = {c.name for c in ssh_program.of_type(COMMAND) if c.name.endswith("-migrate")}
    assert migrations
    assert migrations <= {s.name for s in steps}
    problems = []
    for step in steps:
        script = step.inputs["create"]
        docker = re.search(r"^docker=(\S+)$", script, re.M)
        container = re.search(r"^container=(\S+)$", script, re.M)
        run = re.search(r'^"\$docker" exec (?:-i )?"\$container" (.+)$', script, re.M)
        assert docker and container and run, f"{step.name}: unexpected shape\n{script}"
        assert docker[1] == ssh_docker
        expected = shlex.split(run[1])
        before = len(exec_log(healthy, container[1]))
        done = ssh_server.ssh(script, input=step.inputs.get("stdin"), check=False, timeout=180)
        if done.returncode != 0:
            problems.append(f"{step.name}: exit {done.returncode}: {done.stderr.strip()}")
            continue
        new = exec_log(healthy, container[1])[before:]
        ran = [e["invocation"] for e in new]
        if expected not in ran:
            problems.append(f"{step.name}: {container[1]} ran {ran}, not {expected}")
            continue
        entry = new[ran.index(expected)]
        stdin = step.inputs.get("stdin") or ""
        if entry["stdin"] != stdin:
            problems.append(f"{step.name}: {container[1]} read {entry['stdin']!r} on stdin")
        # What a step feeds a container (Grafana's admin password) is a value the
        # container is already configured with, or the two drift apart.
        if stdin and stdin.strip() not in envs(healthy.declared(container[1])).values():
            problems.append(f"{step.name}: its stdin is none of {container[1]}'s env values")
    assert not problems, "\n".join(problems)


_EXEC_VALUE_OPTIONS = {"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir"}


@dataclass
class ExecStart:
    """A unit's ``ExecStart=`` that runs a command in a container."""

    unit: str
    run: list[str]
    """What the unit runs: ``DOCKER exec ...``, or a job's in-service script and its
    arguments."""
    docker_argv: list[str]
    """``DOCKER exec OPTIONS CONTAINER COMMAND...`` as it reaches docker (the
    container is the service's name when the script looks it up)."""
    script: bytes = b""


def unit_exec_starts(program: Program, docker: str) -> list[ExecStart]:
    """Each ExecStart= in an installed unit that is ``DOCKER exec``, or that runs a
    job's in-service script (which execs into its service's container, found by its
    label when it deploys start-first)."""
    found = []
    for command in installs(program):
        files = expected_files(command.inputs["create"], None)
        for path, (_, data) in files.items():
            for line in data.decode(errors="replace").splitlines():
                if not line.startswith("ExecStart="):
                    continue
                argv = shlex.split(line.removeprefix("ExecStart="))
                if argv[:2] == [docker, "exec"]:
                    found.append(ExecStart(path, argv, argv))
                elif argv[0] in files and "-in-" in argv[0]:
                    script = files[argv[0]][1]
                    last = script.decode().rstrip("\n").splitlines()[-1]
                    words = shlex.split(last)
                    assert words[0] == "exec" and words[-2:] == ["$container", "$@"], last
                    service = argv[0].rsplit("-in-", 1)[1]
                    docker_argv = [*words[1:-2], service, *argv[1:]]
                    found.append(ExecStart(path, argv, docker_argv, script))
    return found


def test_the_units_docker_exec_commands_reach_their_containers(
    healthy: Replayed, ssh_server: SshServer, ssh_program: Program, ssh_docker: str
) -> None:
    """A timer's service that runs a command in a container (``docker exec``, or a
    job's in-service script) reaches a container the program runs, with the command
    and the env it passes: over sshd, against the replayed server, where the
    start-first ones run under their digest names."""
    starts = unit_exec_starts(ssh_program, ssh_docker)
    assert any(start.script for start in starts), "the jobs' in-service scripts"
    problems = []
    for start in starts:
        rest, env = start.docker_argv[2:], {}
        while rest and rest[0].startswith("-"):
            option = rest.pop(0)
            if option in _EXEC_VALUE_OPTIONS:
                value = rest.pop(0)
                if option in {"-e", "--env"}:
                    key, _, val = value.partition("=")
                    env[key] = val
        service, expected = rest[0], rest[1:]
        container = ssh_program.container(service).inputs["name"]
        if container not in healthy.ids:
            problems.append(f"{start.unit}: no container {container}")
            continue
        run = start.run
        if start.script:
            installed = Path(tempfile.mkdtemp(prefix="hemma-in-service-")) / "in-service"
            installed.write_bytes(start.script)
            installed.chmod(0o755)
            installed.parent.chmod(0o755)
            run = [str(installed), *start.run[1:]]
        before = len(exec_log(healthy, container))
        done = ssh_server.ssh(shlex.join(run), check=False)
        new = exec_log(healthy, container)[before:]
        if done.returncode != 0 or [e["invocation"] for e in new] != [expected]:
            problems.append(
                f"{start.unit}: exit {done.returncode} {done.stderr.strip()}; ran {new}"
            )
        elif any(new[0]["env"].get(k) != v for k, v in env.items()):
            problems.append(f"{start.unit}: {container} did not get {env}")
    assert not problems, "\n".join(problems)


SYSTEMCTL = """#!/bin/bash
# Stands in for systemctl on a machine that boots no systemd: records who called
# it with what, and succeeds.
printf '%s %s\\n' "$(id -u)" "$*" >> {log}
"""
SUDO = """#!/bin/bash
# sudo resets PATH to its secure_path; carry the caller's PATH through `env` so the
# recording systemctl still stands in. The privilege change is the real sudo's.
flags=()
while [ "$#" -gt 0 ] && [ "${1#-}" != "$1" ]; do flags+=("$1"); shift; done
exec /usr/bin/sudo "${flags[@]}" env "PATH=$PATH" "$@"
"""


@dataclass
class HostSandbox:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def bin(self) -> Path:
        return self.base / "bin"

    @property
    def log(self) -> Path:
        return self.base / "systemctl.log"

    def calls(self) -> list[tuple[int, str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return [(int(uid), args) for uid, _, args in (line.partition(" ") for line in lines)]

    def run(
        self, ssh_server: SshServer, script: str, stdin: str | None
    ) -> subprocess.CompletedProcess[str]:
        prefix = f"env HEMMA_ROOT={shlex.quote(str(self.root))} PATH={self.bin}:$PATH"
        return ssh_server.ssh(f"{prefix} {script}", input=stdin, check=False)

    def files(self) -> dict[str, os.stat_result]:
        return {
            "/" + str(p.relative_to(self.root)): p.stat()
            for p in self.root.rglob("*")
            if p.is_file()
        }


@pytest.fixture
def host_sandbox() -> Iterator[HostSandbox]:
    # Under /tmp rather than pytest's tmp_path: the SSH user must reach bin/.
    base = Path(tempfile.mkdtemp(prefix="hemma-rehearsal-host-", dir="/tmp"))
    base.chmod(0o755)
    sandbox = HostSandbox(base)
    sandbox.root.mkdir(mode=0o755)
    sandbox.bin.mkdir(mode=0o755)
    for name, text in (("systemctl", SYSTEMCTL.format(log=sandbox.log)), ("sudo", SUDO)):
        (sandbox.bin / name).write_text(text)
        (sandbox.bin / name).chmod(0o755)
    try:
        yield sandbox
    finally:
        shutil.rmtree(base, ignore_errors=True)


_PUT = re.compile(r"^put (\S+) (\d{4}) ?(\S*)(?:\s+#.*)?$", re.M)


def expected_files(script: str, stdin: str | None) -> dict[str, tuple[int, bytes]]:
    files = {}
    for path, mode, content in _PUT.findall(script):
        data = base64.b64decode(content) if content else (stdin or "").encode()
        files[path] = (int(mode, 8), data)
    return files


def installs(program: Program) -> list[Declared]:
    return [c for c in program.of_type(COMMAND) if c.name.endswith("-install")]


def test_the_unit_scripts_install_once_change_nothing_twice_and_remove(
    ssh_server: SshServer, ssh_program: Program, host_sandbox: HostSandbox
) -> None:
    assert installs(ssh_program)
    for command in installs(ssh_program):
        name = command.name
        create, delete = command.inputs["create"], command.inputs["delete"]
        stdin = command.inputs.get("stdin")
        expected = expected_files(create, stdin)
        units = re.findall(r"^sudo -n systemctl enable (.+)$", create, re.M)
        assert expected and units, f"{name}: unexpected shape\n{create}"

        first = host_sandbox.run(ssh_server, create, stdin)
        assert first.returncode == 0, f"{name}: {first.stderr}"
        landed = host_sandbox.files()
        assert set(landed) == set(expected), name
        for path, (mode, data) in expected.items():
            on_disk = host_sandbox.root / path.lstrip("/")
            assert on_disk.read_bytes() == data, f"{name}: {path}"
            assert (landed[path].st_mode & 0o7777, landed[path].st_uid) == (mode, 0), path
        calls = host_sandbox.calls()
        assert {uid for uid, _ in calls} == {0}, f"{name}: systemctl not through sudo"
        assert [args for _, args in calls] == [
            "daemon-reload",
            *(f"enable {u}" for u in units),
            *(f"restart {u}" for u in units),
        ], name

        second = host_sandbox.run(ssh_server, create, stdin)
        assert second.returncode == 0, f"{name}: {second.stderr}"
        again = host_sandbox.files()
        assert {p: (s.st_ino, s.st_mtime_ns) for p, s in again.items()} == {
            p: (s.st_ino, s.st_mtime_ns) for p, s in landed.items()
        }, f"{name}: a second install rewrote files"
        assert [args for _, args in host_sandbox.calls()] == [
            *(f"enable {u}" for u in units),
            *(f"start {u}" for u in units),
        ], f"{name}: a second install reloaded or restarted"

        removed = host_sandbox.run(ssh_server, delete, None)
        assert removed.returncode == 0, f"{name}: {removed.stderr}"
        assert host_sandbox.files() == {}, f"{name}: left {sorted(host_sandbox.files())}"
        calls = host_sandbox.calls()
        assert [args for _, args in calls][-1] == "daemon-reload", name
        assert any(args.startswith("disable --now") for _, args in calls), name


# --- last: a host reboot -------------------------------------------------------------


def test_after_a_daemon_restart_every_container_comes_back_healthy(healthy: Replayed) -> None:
    """The engine stopped and started the way a reboot or a package upgrade does it:
    ``unless-stopped`` brings every container back, on its networks, published again.
    Runs last: it restarts everything the other tests read."""
    healthy.engine.restart()
    problems = []
    for container in healthy.program.containers:
        name = container.inputs["name"]
        try:
            healthy.engine.wait_for(
                name, HEALTH, "healthy", timeout=HEALTH_CAP, exited_is_final=False
            )
        except TimeoutError as error:
            problems.append(str(error).splitlines()[0])
    assert not problems, "\n".join(problems)
    assert docker_proxies(healthy.engine) == {(b.ip, b.port) for b in published(healthy.program)}
    for container in healthy.program.containers:
        if "VIRTUAL_HOST" in envs(container):
            name, port = container.inputs["name"], envs(container)["VIRTUAL_PORT"]
            assert http_status(healthy, PROXY, f"http://{name}:{port}/") == "200", name
