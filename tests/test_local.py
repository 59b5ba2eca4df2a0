"""The local stack (Pulumi.local.yaml): the same server on the operator's own Docker.

It is the hemma topology (networks, the proxy, shared-postgres with each app's
role and databases, the observability stack, every app whose checkout is here)
with nothing that needs Hemma: no SSH connection, no host unit, no ACME, the
proxy on 127.0.0.1 only, steps run with this machine's docker CLI.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.harness import (
    Program,
    local_config,
    run_expecting_error,
    run_program,
    site_config,
)

CONTAINER = "docker:index/container:Container"
LOCAL_SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def local() -> Program:
    return run_program(local_config(), secret_keys=set())


@pytest.fixture(scope="module")
def hemma() -> Program:
    return run_program(site_config())


def env(container: Any) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def test_it_is_the_same_topology_as_hemma(local: Program, hemma: Program) -> None:
    assert local.outputs["networks"] == hemma.outputs["networks"]
    assert local.outputs["containers"] == hemma.outputs["containers"]
    assert local.outputs["appDatabases"] == hemma.outputs["appDatabases"]
    for route, target in hemma.outputs["routes"].items():
        local_route = route.replace(".hemma.hule.education", ".localhost").replace(
            ".hule.education", ".localhost"
        )
        assert local.outputs["routes"][local_route] == target
    assert all(h.endswith(".localhost") for h in local.outputs["proxyPublicHosts"])


def test_it_runs_on_this_machines_docker_and_reaches_for_no_ssh(local: Program) -> None:
    (provider,) = local.of_type("pulumi:providers:docker")
    assert provider.inputs["host"] == LOCAL_SOCKET
    types = {r.type for r in local.declared}
    assert "command:remote:Command" not in types
    assert "hemma:host:SystemdUnit" not in types
    steps = [r for r in local.of_type("command:local:Command") if "DOCKER_HOST" in str(r.inputs)]
    assert steps, "the migrations run here, with this machine's docker"
    for step in steps:
        assert step.inputs["environment"] == {"DOCKER_HOST": LOCAL_SOCKET}
        assert "docker=docker\n" in step.inputs["create"]
    assert local.outputs["sshTarget"] is None and local.outputs["sshTunnels"] == {}
    assert local.outputs["postgresTunnel"] is None
    assert local.outputs["hostUnits"] == {}


def test_there_is_no_acme_and_the_proxy_listens_on_this_machine_only(local: Program) -> None:
    names = {c.inputs["name"] for c in local.containers}
    assert "acme-companion" not in names
    for container in local.containers:
        assert not any(k.startswith("LETSENCRYPT_") for k in env(container)), container.name
        for port in container.inputs.get("ports", []):
            assert port["ip"] == "127.0.0.1", (container.name, port)
    proxy = local.container("nginx-proxy")
    assert sorted(p["external"] for p in proxy.inputs["ports"]) == [80, 443]
    public = local.outputs["healthChecks"]["public"]
    assert public and all(url.startswith("http://") for url in public.values())


def test_the_database_provider_connects_to_the_published_port_itself(local: Program) -> None:
    """On a port of its own: 15432 is where the hemma stack's database tunnel listens
    on the same laptop, and scripts/pulumi for hemma must never find this one there."""
    (provider,) = local.of_type("pulumi:providers:postgresql")
    postgres = local.container("shared-postgres")
    (published,) = postgres.inputs["ports"]
    assert (provider.inputs["host"], int(provider.inputs["port"])) == ("127.0.0.1", 25432)
    assert (published["ip"], published["external"]) == ("127.0.0.1", 25432)


def test_the_local_stack_cannot_take_the_hemma_stacks_tunnel_port() -> None:
    config = local_config()
    config["postgres"] = {**config["postgres"], "hostPort": 15432}
    message, program = run_expecting_error(config, set())
    assert message.splitlines() == [
        "hemma:postgres.hostPort: 15432 is the hemma stack's database tunnel on this machine"
        " (postgres.tunnelPort): give the local stack its own, such as 25432"
    ]
    assert program.declared == []


def test_apps_whose_checkout_is_absent_are_left_out_with_a_line() -> None:
    program = run_program(local_config(sources=False), secret_keys=set())
    assert program.warnings == [
        "hemma: the huleedu app is left out: its source checkout /nonexistent/huleedu is not here",
        "hemma: the skriptoteket app is left out: its source checkout "
        "/nonexistent/skriptoteket is not here",
    ]
    assert sorted(program.outputs["containers"]) == ["observability"]
    assert program.outputs["appDatabases"] == {}
    prometheus = program.container("prometheus")
    assert [n["name"] for n in prometheus.inputs["networksAdvanced"]] == [
        "hule-network",
        "observability_internal_network",
    ]
    scraped = yaml.safe_load(
        next(u["content"] for u in prometheus.inputs["uploads"] if u["file"].endswith(".yml"))
    )
    assert "huleedu" not in str(scraped), "nothing scrapes an app that is not there"


def test_the_hemma_stack_still_requires_every_checkout() -> None:
    config = site_config()
    config["appSources"] = {**config["appSources"], "skriptoteket": "/nonexistent/skriptoteket"}
    message, declared = run_expecting_error(config)
    assert message.startswith("hemma:appSources.skriptoteket: ")
    assert declared.declared == []


def test_operator_secrets_are_optional_locally_and_said_so() -> None:
    program = run_program(local_config(), secret_keys=set())
    assert "hemma:smtpPassword: not set; huleedu_email_service runs without it" in (
        program.warnings
    )


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"dockerHost": "ssh://hemma"},
            "hemma:dockerHost: the local stack runs on this machine's Docker, unix:///PATH "
            "(got 'ssh://hemma')",
        ),
        (
            {"backups": {"enabled": True}},
            "hemma:backups.enabled: the local stack installs no host units, and the backups "
            "are host units: set it to false",
        ),
        (
            {"import": {"volume/grafana-data": "grafana-data"}},
            "hemma:import: the local stack adopts nothing",
        ),
    ],
    ids=["over ssh", "with backups", "adopting"],
)
def test_what_the_local_stack_cannot_have_is_refused(change: dict[str, Any], line: str) -> None:
    config = {**copy.deepcopy(local_config()), **change}
    message, program = run_expecting_error(config, secret_keys=set())
    assert line in message.splitlines()
    assert program.declared == []


@pytest.mark.parametrize("key", ["acmeEmail", "sshUser", "sshHostKey", "sshPrivateKey"])
def test_the_hemma_stack_needs_what_reaches_hemma(key: str) -> None:
    config = {k: v for k, v in site_config().items() if k != key}
    message, program = run_expecting_error(config)
    assert message.splitlines() == [f"hemma:{key}: is required"]
    assert program.declared == []
