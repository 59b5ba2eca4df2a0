"""What every part is built on: explicit providers, networks, protected volumes, container
defaults and generated secrets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable

import pulumi
import pulumi_docker as docker
import pytest

from components.config.reading import parse
from components.foundation.containers import HEALTHCHECK_LABEL, Health, go_duration, localhost_port
from components.host.machines import shell_for
from components.model.values import PLATFORM_HOST
from plan.readback import parse_duration
from tests.harness import (
    OPERATOR_SECRETS,
    TEST_HOST_KEY,
    Declared,
    Program,
    as_cli_value,
    run_program,
    service_name,
    site_config,
)

VOLUME = "docker:index/volume:Volume"


NETWORK = "docker:index/network:Network"


PASSWORD = "random:index/randomPassword:RandomPassword"


@pytest.fixture
def program() -> Program:
    return run_program()


def test_the_shared_and_internal_networks_exist_with_the_runbook_names(program: Program) -> None:
    names = sorted(n.inputs["name"] for n in program.of_type(NETWORK))
    assert names == ["hule-network", "huleedu_internal_network", "observability_internal_network"]
    assert program.outputs["networks"] == {
        "hule-network": "hule-network",
        "huleedu_internal_network": "huleedu_internal_network",
        "observability_internal_network": "observability_internal_network",
    }


def test_docker_resources_go_to_hemma_over_ssh_not_the_local_daemon(program: Program) -> None:
    provider = program.named("hemma-docker")
    assert provider.inputs["host"] == "ssh://hemma"
    docker_resources = [r for r in program.declared if r.type.startswith("docker:index")]
    assert docker_resources
    for resource in docker_resources:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


@pulumi.runtime.test
def test_host_units_connect_with_a_secret_key_and_a_pinned_host_key() -> Awaitable[None]:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    connection = shell_for(config, config.machines()[PLATFORM_HOST]).connection
    assert connection is not None
    assert connection.host == "hemma.hule.education"
    assert connection.user == "paunchygent"
    assert connection.port == 22
    assert connection.host_key == TEST_HOST_KEY
    private_key = connection.private_key
    assert isinstance(private_key, pulumi.Output)

    async def check() -> None:
        assert await private_key.is_secret(), "the SSH private key must stay a secret Output"

    return asyncio.ensure_future(check())


def test_every_volume_is_protected_and_retained(program: Program) -> None:
    volumes = program.of_type(VOLUME)
    assert {v.inputs["name"] for v in volumes} >= {
        "shared-postgres-data",
        "nginx-proxy-certs",
        "nginx-proxy-html",
        "acme-companion-acme",
        "skriptoteket-artifacts",
        "huleedu_hf_cache",
        "grafana-data",
        "prometheus-data",
    }
    for volume in volumes:
        assert volume.protect and volume.retain_on_delete, volume.name


def test_every_container_restarts_rotates_logs_checks_health_and_replaces_cleanly(
    program: Program,
) -> None:
    assert program.containers
    for container in program.containers:
        name = container.inputs["name"]
        assert container.inputs["restart"] == "unless-stopped", name
        assert container.inputs["healthcheck"]["tests"], name
        assert container.inputs["logOpts"]["max-size"], name
        assert container.delete_before_replace_defined, f"{name}: set, not left to the provider"
        if service_name(container) == name:
            assert container.delete_before_replace, f"{name}: a fixed name needs delete-first"
        else:
            assert re.fullmatch(rf"{service_name(container)}-[0-9a-f]{{12}}", name), name
            assert not container.delete_before_replace, f"{name}: start-first"


def test_generated_passwords_are_long_url_safe_and_stable(program: Program) -> None:
    passwords = program.of_type(PASSWORD)
    assert sorted(p.name for p in passwords) == [
        "huleedu-container-name-key",
        "huleedu-internal-api-key",
        "huleedu-jwt-secret",
        "observability-grafana-admin-password",
        "proxy-basic-auth-jaeger.hemma.hule.education",
        "proxy-basic-auth-prometheus.hemma.hule.education",
        "shared-postgres-admin-password",
        "shared-postgres-huleedu-password",
        "shared-postgres-skriptoteket-password",
        "skriptoteket-container-name-key",
    ]
    for password in passwords:
        assert int(password.inputs["length"]) >= 32, password.name
        assert password.inputs["special"] is False, password.name
        assert "keepers" not in password.inputs, f"{password.name} would change with its keepers"
        assert re.fullmatch(r"[A-Za-z0-9]{32,}", password.state["result"]), password.name


def test_every_container_gets_a_stop_grace_period_that_fits_it(program: Program) -> None:
    """Without destroy_grace_seconds the provider stops with timeout 0: SIGKILL right
    after the stop signal. Whatever holds data (a named volume) gets 30 s or more, and
    the daemon gives the same when it stops the container itself (stop_timeout: a snap
    refresh stops every container with 10 s each when it is unset)."""
    for container in program.containers:
        name = container.inputs["name"]
        grace = container.inputs.get("destroyGraceSeconds", 0)
        assert container.inputs.get("stopTimeout") == grace, name
        assert grace >= 10, name
        if any(v.get("volumeName") for v in container.inputs.get("volumes", [])):
            assert grace >= 30, f"{name} holds data and gets {grace} s"
    assert program.container("shared-postgres").inputs["destroyGraceSeconds"] == 60
    assert program.container("huleedu_kafka").inputs["destroyGraceSeconds"] == 60


def health_of(container: Declared) -> Health:
    check = container.inputs["healthcheck"]
    return Health(
        command=check["tests"][1],
        start_period=int(parse_duration(check["startPeriod"])),
        interval=int(parse_duration(check["interval"])),
        timeout=int(parse_duration(check["timeout"])),
        retries=int(check["retries"]),
    )


def test_a_changed_health_check_replaces_its_container(program: Program) -> None:
    """The provider's Update does not apply a health check (kreuzwerker v4.5), so its
    digest is a label, and a label change replaces the container with the new check."""
    for container in program.containers:
        labels = {label["label"]: label["value"] for label in container.inputs["labels"]}
        assert labels[HEALTHCHECK_LABEL] == health_of(container).digest(), container.name
    base = Health("true")
    for changed in (
        Health("false"),
        Health("true", start_period=31),
        Health("true", interval=16),
        Health("true", timeout=6),
        Health("true", retries=6),
    ):
        assert changed.digest() != base.digest(), changed


@pytest.mark.parametrize(
    ("seconds", "printed"),
    [(0, "0s"), (15, "15s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"), (3661, "1h1m1s")],
)
def test_durations_are_written_as_the_provider_reads_them_back(seconds: int, printed: str) -> None:
    """Go's Duration.String(): anything else differs on every preview."""
    assert go_duration(seconds) == printed


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        go_duration(-1)


def test_the_health_check_digest_does_not_change_between_versions() -> None:
    """The digest is a label, and a changed label replaces the container: the same check
    must give the same digest in every version of the program, or an up after an
    upgrade replaces every container."""
    assert Health("true").digest() == "903e7d44602b9391"


def test_a_localhost_port_publishes_on_127_0_0_1_at_its_own_port_unless_told() -> None:
    assert localhost_port(8085) == docker.ContainerPortArgs(
        internal=8085, external=8085, ip="127.0.0.1"
    )
    assert localhost_port(5432, 25432) == docker.ContainerPortArgs(
        internal=5432, external=25432, ip="127.0.0.1"
    )


def test_pulled_images_stay_on_hemma_for_a_rollback() -> None:
    """keep_locally: an image replaced by a new one is not deleted, so imageOverrides can
    go back to it without a registry."""
    program = run_program(site_config())
    images = program.of_type("docker:index/remoteImage:RemoteImage")
    assert images
    assert all(image.inputs.get("keepLocally") is True for image in images)
