"""The policy pack's guardrails: each with a case it passes and a case it refuses, and
all of them over everything the program declares, which must pass every one."""

from __future__ import annotations

import copy
import py_compile
from pathlib import Path
from typing import Any

import pytest

from policy import validators as v
from policy.validators import Resource
from tests.harness import ROOT, Program, local_config, run_program, site_config, with_classhub
from tests.host.test_units import MANAGED_GPU


def container(**props: Any) -> Resource:
    base: dict[str, Any] = {
        "name": "web",
        "image": "sha256:abc",
        "restart": "unless-stopped",
        "healthcheck": {"tests": ["CMD-SHELL", "true"]},
        "networksAdvanced": [{"name": "hule-network"}],
        "destroyGraceSeconds": 30,
        "stopTimeout": 30,
    }
    return Resource(v.CONTAINER, "web", {**base, **props})


PROXY = container(
    name="nginx-proxy",
    labels=[{"label": v.PROXY_LABEL, "value": "true"}],
    ports=[{"internal": 443, "external": 443, "ip": "0.0.0.0"}],
)
ROUTED = ["VIRTUAL_HOST=a.hule.education", "LETSENCRYPT_HOST=a.hule.education"]


def test_a_routed_container_off_the_proxys_networks_is_refused() -> None:
    good = container(envs=ROUTED)
    stray = container(envs=ROUTED, networksAdvanced=[{"name": "elsewhere"}])
    uncertified = container(envs=["VIRTUAL_HOST=a.hule.education"])
    assert v.routed_containers_reach_the_proxy([PROXY, good]) == []
    assert v.routed_containers_reach_the_proxy([PROXY, stray]) == [
        "web is routed but shares no network with nginx-proxy"
    ]
    companion = container(name="acme-companion", envs=["NGINX_PROXY_CONTAINER=nginx-proxy"])
    assert v.routed_containers_reach_the_proxy([PROXY, companion, uncertified]) == [
        "web: LETSENCRYPT_HOST differs from VIRTUAL_HOST"
    ]
    # Without acme-companion (the local stack) nothing asks for certificates.
    assert v.routed_containers_reach_the_proxy([PROXY, uncertified]) == []


def test_only_the_proxy_publishes_on_a_public_address() -> None:
    assert v.no_public_ports(PROXY) == []
    assert (
        v.no_public_ports(container(ports=[{"internal": 8, "external": 8, "ip": "127.0.0.1"}]))
        == []
    )
    assert v.no_public_ports(container(ports=[{"internal": 8, "external": 8, "ip": "::1"}])) == []
    assert v.no_public_ports(container(ports=[{"internal": 8, "external": 8}])) == [
        "web publishes 8 on 0.0.0.0"
    ]
    on_proxy = container(
        name="nginx-proxy",
        labels=PROXY.props["labels"],
        ports=[{"internal": 8080, "external": 8080, "ip": "::"}],
    )
    assert v.no_public_ports(on_proxy) == ["nginx-proxy publishes 8080 on ::"]


def socket(read_only: bool) -> list[dict[str, Any]]:
    return [{"hostPath": v.DOCKER_SOCKET, "containerPath": v.DOCKER_SOCKET, "readOnly": read_only}]


def test_the_docker_socket_goes_only_where_it_is_needed() -> None:
    assert v.docker_socket_only_where_needed(container(name="promtail", volumes=socket(True))) == []
    assert v.docker_socket_only_where_needed(container(name="promtail", volumes=socket(False)))
    assert v.docker_socket_only_where_needed(container(name="web", volumes=socket(True))) == [
        "web mounts the Docker socket and has no need of it"
    ]
    writer = container(name="skriptoteket-web", volumes=socket(False))
    assert v.docker_socket_only_where_needed(writer) == []


def start_first(name: str, service: str, **props: Any) -> v.Resource:
    return container(name=name, labels=[{"label": v.SERVICE_LABEL, "value": service}], **props)


def test_a_start_first_container_is_judged_by_its_service_only_under_its_digest_name() -> None:
    writer = start_first("skriptoteket-web-0123456789ab", "skriptoteket-web", volumes=socket(False))
    assert v.docker_socket_only_where_needed(writer) == []
    # The label alone grants nothing: the name must be the service's and a digest.
    for name in ("evil", "evil-0123456789ab", "skriptoteket-web-x", "skriptoteket-web-0123"):
        spoof = start_first(name, "skriptoteket-web", volumes=socket(False))
        assert v.docker_socket_only_where_needed(spoof) == [
            f"{name} mounts the Docker socket and has no need of it"
        ]


def test_a_start_first_container_holds_no_host_port() -> None:
    local = [{"internal": 80, "external": 8080, "ip": "127.0.0.1"}]
    assert v.start_first_holds_no_host_port(start_first("web-0123456789ab", "web")) == []
    assert v.start_first_holds_no_host_port(
        start_first("web-0123456789ab", "web", ports=local)
    ) == ["web-0123456789ab is start-first but publishes host port 8080"]
    assert v.start_first_holds_no_host_port(container(name="web", ports=local)) == []


def test_every_container_restarts_and_checks_its_health() -> None:
    assert v.restart_and_health_check(container()) == []
    assert v.restart_and_health_check(container(restart="no")) == [
        "web has no restart policy (restart=no)"
    ]
    assert v.restart_and_health_check(container(healthcheck=None)) == ["web has no health check"]
    assert v.restart_and_health_check(container(healthcheck={"tests": ["NONE"]}))


def test_pulled_images_are_pinned() -> None:
    def pulled(name: str) -> Resource:
        return Resource(v.REMOTE_IMAGE, name, {"name": name})

    assert v.images_are_pinned(pulled("redis:7.4-alpine")) == []
    assert v.images_are_pinned(pulled("minio/minio@sha256:" + "a" * 64)) == []
    assert v.images_are_pinned(pulled("rocm/pytorch:latest"))
    assert v.images_are_pinned(pulled("localhost:5000/postgres"))


def test_volumes_and_databases_are_protected() -> None:
    assert v.data_is_protected(Resource(v.VOLUME, "d", {"name": "d"}, protect=True)) == []
    assert v.data_is_protected(Resource(v.DATABASE, "d", {"name": "d"})) == [
        "d is not protected from deletion"
    ]


def test_no_role_is_superuser() -> None:
    assert v.no_superuser_role(Resource(v.ROLE, "r", {"name": "r", "superuser": False})) == []
    assert v.no_superuser_role(Resource(v.ROLE, "r", {"name": "r", "superuser": True}))


def test_a_typed_in_credential_is_reported() -> None:
    generated = container(envs=["POSTGRES_PASSWORD=" + "aA1" * 13])
    assert v.no_plaintext_credentials(generated) == []
    assert v.no_plaintext_credentials(container(envs=["POSTGRES_PASSWORD=postgres"])) == [
        "web: POSTGRES_PASSWORD looks like a typed-in credential"
    ]
    assert v.no_plaintext_credentials(container(envs=["LOG_LEVEL=debug"])) == []


def test_a_container_with_data_gets_time_to_stop() -> None:
    data = [{"volumeName": "d", "containerPath": "/d"}]
    assert v.data_containers_stop_gracefully(container(volumes=data)) == []
    assert v.data_containers_stop_gracefully(container(volumes=data, destroyGraceSeconds=0)) == [
        "web holds data and gets 0 s to stop when removed"
    ]
    # The daemon's own stop (a snap refresh) gives 10 s when stopTimeout is unset.
    assert v.data_containers_stop_gracefully(container(volumes=data, stopTimeout=None)) == [
        "web holds data and gets 10 s to stop when the daemon stops it"
    ]
    assert v.data_containers_stop_gracefully(container(stopTimeout=None)) == [], "no data"


def as_pack_sees(program: Program) -> list[Resource]:
    """The declared resources as the engine hands them to the pack: inputs in camelCase,
    secrets as plain values, the protect option."""
    return [Resource(r.type, r.name, r.inputs, r.protect) for r in program.declared]


def configurations() -> dict[str, dict[str, Any]]:
    managed = copy.deepcopy(site_config())
    managed["gpu"] = {**managed["gpu"], **MANAGED_GPU}
    return {
        "default": site_config(),
        "classhub": with_classhub(site_config()),
        "gpu": managed,
        "local": local_config(),
    }


@pytest.mark.parametrize("name", sorted(configurations()))
def test_everything_the_program_declares_passes_every_policy(name: str) -> None:
    secrets: set[str] | None = set() if name == "local" else None
    found = v.violations(as_pack_sees(run_program(configurations()[name], secret_keys=secrets)))
    advisory = {n for n, (_, level) in v.RESOURCE_POLICIES.items() if level == "advisory"}
    assert {k: p for k, p in found.items() if k not in advisory} == {}
    assert found.get("images-are-pinned", []) == []
    assert found.get("no-plaintext-credentials", []) == []


def test_the_pack_hands_every_validator_to_the_policy_engine() -> None:
    main = ROOT / "policy" / "__main__.py"
    py_compile.compile(str(main), doraise=True)
    text = main.read_text()
    assert "RESOURCE_POLICIES" in text and "STACK_POLICIES" in text
    requirements = (ROOT / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy==" in requirements
    assert Path(ROOT / "policy" / "PulumiPolicy.yaml").exists()
