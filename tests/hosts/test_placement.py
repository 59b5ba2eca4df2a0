"""Placing services on machines: each lands on its own machine's Docker, and nothing
that would reach across machines is declared.

The second machine in these tests is ``gpu`` (``tests.harness.two_host_config``), and
HuleEdu's research services run there: the GPU box's first tenants, and the only
services of today's catalog that no other service, route, database or backup holds
to Hemma.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config.reading import parse
from components.main import host_units
from components.model.values import PLATFORM_HOST
from tests.harness import (
    OPERATOR_SECRETS,
    ROOT,
    SECOND_HOST,
    SECOND_HOST_PLACED,
    Declared,
    Program,
    as_cli_value,
    provider_name,
    run_expecting_error,
    run_program,
    site_config,
    two_host_config,
)

PROVIDER = "pulumi:providers:docker"


def docker_resources(program: Program) -> list[Declared]:
    return [r for r in program.declared if r.type.startswith("docker:") and r.custom]


@pytest.fixture(scope="module")
def one() -> Program:
    return run_program()


@pytest.fixture(scope="module")
def two() -> Program:
    return run_program(two_host_config())


def test_todays_config_has_one_provider_and_every_docker_resource_names_it(
    one: Program,
) -> None:
    """``pulumi:disable-default-providers`` makes a resource without one fail; here
    none is without one."""
    assert [p.name for p in one.of_type(PROVIDER)] == ["hemma-docker"]
    assert one.named("hemma-docker").inputs["host"] == "ssh://hemma"
    assert {provider_name(r) for r in docker_resources(one)} == {"hemma-docker"}


def test_a_second_machine_gets_its_own_provider_and_exactly_what_is_placed_there(
    two: Program,
) -> None:
    assert sorted(p.name for p in two.of_type(PROVIDER)) == ["gpu-docker", "hemma-docker"]
    assert two.named("gpu-docker").inputs["host"] == "ssh://gpu"
    on_gpu = {
        (r.type.split("/")[-1], r.inputs["name"])
        for r in docker_resources(two)
        if provider_name(r) == "gpu-docker"
    }
    assert on_gpu == {
        ("container:Container", "huleedu_essay_embed_offload"),
        ("container:Container", "huleedu_language_tool_service"),
        ("volume:Volume", "huleedu_hf_cache"),
        ("network:Network", "huleedu_internal_network"),
    }
    assert all(provider_name(r) in {"gpu-docker", "hemma-docker"} for r in docker_resources(two))


def test_a_service_on_the_second_machine_joins_that_machines_own_network(
    two: Program,
) -> None:
    gpu_network = two.named("networks-gpu-huleedu_internal_network")
    hemma_network = two.named("networks-huleedu_internal_network")
    for name in SECOND_HOST_PLACED:
        joined = two.container(name).inputs["networksAdvanced"]
        assert [n["name"] for n in joined] == [gpu_network.state["name"]]
    assert provider_name(hemma_network) == "hemma-docker"
    assert provider_name(gpu_network) == "gpu-docker"


def test_its_image_is_built_on_the_second_machines_docker(two: Program) -> None:
    builds = {
        r.name: r.inputs["create"]
        for r in two.of_type("command:local:Command")
        if r.name.startswith("huleedu-") and r.name.endswith("-image")
    }
    offload = builds["huleedu-essay_embed_offload-image"]
    assert "ssh://gpu" in offload and "ssh://hemma" not in offload
    assert "ssh://hemma" in builds["huleedu-nlp_service-image"]


def test_everything_else_keeps_its_urn(one: Program, two: Program) -> None:
    """Adding a machine moves only what is placed there (under the app's ``OnHost``
    child, whose provider they inherit): the rest plans unchanged."""
    names = {"huleedu-huleedu_hf_cache"} | {
        f"huleedu-{service}{suffix}"
        for service in ("essay_embed_offload", "language_tool_service")
        for suffix in ("", "-image")
    }
    before = {r.urn for r in one.declared}
    after = {r.urn for r in two.declared}
    assert {urn.rsplit("::", 1)[-1] for urn in before - after} == names
    assert {urn.rsplit("::", 1)[-1] for urn in after - before} == names | {
        "gpu-docker",
        "networks-gpu",
        "networks-gpu-huleedu_internal_network",
        "huleedu-on-gpu",
    }


def test_the_outputs_say_which_machine_each_thing_is_on(two: Program) -> None:
    out = two.outputs
    assert out["hosts"][SECOND_HOST] == {
        "sshTarget": "operator@gpu.hule.education",
        "sshPort": 2222,
        "dockerHost": "ssh://gpu",
        "dockerPath": "/usr/bin/docker",
        "volumeRoot": "/var/lib/docker/volumes",
        "metricsDirectory": "/var/lib/hemma/metrics",
    }
    assert out["hosts"][PLATFORM_HOST]["sshTarget"] == "paunchygent@hemma.hule.education"
    placed = {name for name, host in out["placement"].items() if host == SECOND_HOST}
    assert placed == set(SECOND_HOST_PLACED)
    assert out["placement"]["shared-postgres"] == PLATFORM_HOST
    offload = out["sshTunnels"]["huleedu_essay_embed_offload"]
    assert offload["host"] == SECOND_HOST
    assert offload["command"] == (
        "ssh -N -p 2222 -L 19000:127.0.0.1:9000 operator@gpu.hule.education"
    )
    assert out["sshTunnels"]["llama-server"]["host"] == PLATFORM_HOST
    assert out["sshTunnels"]["llama-server"]["command"].endswith("paunchygent@hemma.hule.education")
    internal = out["healthChecks"]["internal"]
    assert internal["huleedu_language_tool_service"]["host"] == SECOND_HOST
    assert internal["huleedu_nlp_service"]["host"] == PLATFORM_HOST
    assert {unit["host"] for unit in out["hostUnits"].values()} == {PLATFORM_HOST}


def test_hemmas_backups_are_what_they_were(one: Program, two: Program) -> None:
    """Placing a service elsewhere takes nothing from Hemma's backups: every database
    (shared-postgres stays on Hemma) and every backed-up volume."""
    assert two.outputs["backups"] == one.outputs["backups"]
    assert two.outputs["backups"]["databases"]


def test_hemmas_drift_check_expects_only_hemmas_containers() -> None:
    """The check lists the engine's containers: one on the GPU box would be reported
    missing from Hemma every hour."""
    config = parse_site(two_host_config())
    groups = host_units(config, config.apps())
    manifest = next(
        f.content
        for g in groups
        for f in g.files
        if g.name == "hemma-drift-check" and f.path.endswith("/containers")
    )
    assert "name huleedu_nlp_service\n" in manifest
    for name in SECOND_HOST_PLACED:
        assert f"name {name}\n" not in manifest


def parse_site(config: dict[str, Any]) -> Any:
    return parse({key: as_cli_value(value) for key, value in config.items()}, OPERATOR_SECRETS)


def test_the_gpu_servers_install_on_the_machine_gpu_host_names() -> None:
    """Units install over SSH on the machine that runs what they serve."""
    config = parse_site(site_config())
    gpu = config.gpu.model_copy(
        update={
            "host": SECOND_HOST,
            "llama": config.gpu.llama.model_copy(
                update={"manage": True, "executable": "/opt/llama/llama-server"}
            ),
        }
    )
    placed = parse_site(two_host_config()).model_copy(update={"gpu": gpu})
    catalog = placed.apps()
    on_gpu = [g.name for g in host_units(placed, catalog, SECOND_HOST)]
    on_hemma = [g.name for g in host_units(placed, catalog)]
    assert on_gpu == ["llama-server-rocm", "hemma-relay-llama"]
    assert "llama-server-rocm" not in on_hemma
    assert "cleanup-smart-logs" in on_hemma and "hemma-backup" in on_hemma
    daemon = next(g for g in host_units(placed, catalog, SECOND_HOST) if g.start)
    unit = next(f.content for f in daemon.files if f.path.endswith(".service"))
    assert "After=docker.service" in unit


# --- refusals -------------------------------------------------------------------------


def placed(**changes: Any) -> dict[str, Any]:
    config = two_host_config()
    for key, value in changes.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


REFUSED = [
    pytest.param(
        placed(serviceHosts={"huleedu_redis": SECOND_HOST}),
        "hemma:serviceHosts.huleedu_redis: huleedu_redis (on gpu) is reached by name from "
        "huleedu_api_gateway_service (on hemma), ",
        id="a service others reach by alias",
    ),
    pytest.param(
        placed(extraEnv={"huleedu_essay_embed_offload": {"CACHE_URL": "redis://redis:6379/2"}}),
        "hemma:serviceHosts.huleedu_essay_embed_offload: huleedu_essay_embed_offload (on gpu) "
        "reaches by name huleedu_redis (on hemma) as 'redis', and a Docker network does not "
        "span machines: place them on one",
        id="a name the operator's extraEnv adds",
    ),
    pytest.param(
        placed(
            extraEnv={
                "huleedu_language_tool_service": {
                    "A": "http://REDIS:6379",
                    "B": "kafka.huleedu_internal_network:9092",
                }
            }
        ),
        "hemma:serviceHosts.huleedu_language_tool_service: huleedu_language_tool_service (on "
        "gpu) reaches by name huleedu_kafka (on hemma) as 'kafka', huleedu_redis (on hemma) as "
        "'redis', and",
        id="a name in capitals, or with its network's domain",
    ),
    pytest.param(
        placed(
            skriptoteketCleanup={"host": SECOND_HOST},
            serviceHosts={**two_host_config()["serviceHosts"], "skriptoteket-web": PLATFORM_HOST},
        ),
        "hemma:serviceHosts.skriptoteket-web: the skriptoteket app's job "
        "skriptoteket-sandbox-snapshots-cleanup (on gpu) runs docker exec in skriptoteket-web "
        "(on hemma): keep them on one machine",
        id="a host job away from its container",
    ),
    pytest.param(
        placed(serviceHosts={"huleedu_nlp_service": SECOND_HOST}),
        "hemma:serviceHosts.huleedu_nlp_service: huleedu_nlp_service (on gpu) logs in to "
        "shared-postgres (on hemma), and a Docker network does not span machines: keep it "
        "on hemma",
        id="a user of shared-postgres",
    ),
    pytest.param(
        placed(observability={"host": SECOND_HOST}),
        "hemma:observability.host: grafana (on gpu) is routed, and nginx-proxy (on hemma) "
        "routes only to containers of its own daemon: keep it on hemma",
        id="a routed service",
    ),
    pytest.param(
        placed(gpu={"host": SECOND_HOST}),
        "hemma:gpu.host: skriptoteket-web (on hemma) calls the GPU servers at "
        "host.docker.internal, which run on gpu (gpu.host): place them on one machine",
        id="the GPU servers away from their callers",
    ),
    pytest.param(
        placed(serviceHosts={"huleedu_kafka": SECOND_HOST}),
        "hemma:serviceHosts.huleedu_kafka: huleedu_kafka (on gpu) has volume "
        "'huleedu_kafka_data', which the nightly backup takes (stop), and the backups run "
        "on hemma only: keep it on hemma",
        id="a backed-up volume",
    ),
    pytest.param(
        placed(serviceHosts={"skriptoteket-web": SECOND_HOST}),
        "hemma:serviceHosts.skriptoteket-web: skriptoteket-web (on gpu) logs in to "
        "shared-postgres (on hemma)",
        id="a user of shared-postgres by its DATABASE_URL alone",
    ),
    pytest.param(
        placed(extraEnv={"huleedu_essay_embed_offload": {"PGHOST": "shared-postgres"}}),
        "hemma:serviceHosts.huleedu_essay_embed_offload: huleedu_essay_embed_offload (on gpu) "
        "logs in to shared-postgres (on hemma)",
        id="a user of shared-postgres by its name alone",
    ),
    pytest.param(
        placed(skriptoteketCleanup={"host": "nas"}),
        "hemma:skriptoteketCleanup.host: no machine named 'nas'",
        id="an unknown machine, named by its app's key",
    ),
    pytest.param(
        placed(serviceHosts={"huleedu_kafka": "nas"}),
        "hemma:serviceHosts.huleedu_kafka: no machine named 'nas' (known: gpu, hemma; add "
        "it under hosts)",
        id="an unknown machine",
    ),
    pytest.param(
        placed(serviceHosts={"huleedu_kafak": SECOND_HOST}),
        "hemma:serviceHosts.huleedu_kafak: no container of that name (did you mean huleedu_kafka?)",
        id="an unknown container",
    ),
    pytest.param(
        placed(hosts={PLATFORM_HOST: two_host_config()["hosts"][SECOND_HOST]}),
        "hemma:hosts.hemma: is the server the top-level keys reach (sshHost, dockerHost, "
        "...); name a further machine otherwise",
        id="hemma redefined",
    ),
    pytest.param(
        placed(hosts={"Gpu box": {}}),
        "hemma:hosts: the key 'Gpu box' not a host name (a-z, 0-9, -; 31 at most)\n",
        id="a bad machine name",
    ),
]


@pytest.mark.parametrize(("config", "expected"), REFUSED)
def test_a_placement_across_machines_is_refused_naming_both_ends(
    config: dict[str, Any], expected: str
) -> None:
    message, program = run_expecting_error(copy.deepcopy(config))
    assert expected in message, message
    assert program.declared == []


def test_a_second_machine_without_its_host_key_is_refused() -> None:
    config = two_host_config()
    del config["hosts"][SECOND_HOST]["sshHostKey"]
    message, program = run_expecting_error(config)
    assert message == "hemma:hosts.gpu.sshHostKey: is required"
    assert program.declared == []


def test_a_retired_apps_volumes_stay_on_its_machine() -> None:
    """Switched off with ``keepData``, an app's volumes stay declared where they are:
    declared on Hemma instead, they would be replaced (refused: protected)."""
    config = two_host_config()
    config["classHub"] = {
        **config["classHub"],
        "enabled": False,
        "keepData": True,
        "host": SECOND_HOST,
    }
    program = run_program(config)
    volumes = [
        v for v in program.of_type("docker:index/volume:Volume") if v.name.startswith("classhub-")
    ]
    assert volumes
    assert {provider_name(v) for v in volumes} == {"gpu-docker"}
    assert not [c for c in program.containers if c.name.startswith("classhub-")]
    assert "classhub_web" not in program.outputs["placement"]


def test_the_offline_plan_names_the_machine_of_whatever_is_not_on_hemma() -> None:
    from plan import report
    from plan.cli import make_evaluation
    from plan.document import document

    key = two_host_config()["hosts"][SECOND_HOST]["sshHostKey"]
    configs = [
        "hosts.gpu.sshHost=gpu.hule.education",
        "hosts.gpu.sshUser=operator",
        f"hosts.gpu.sshHostKey={key}",
        "hosts.gpu.dockerHost=ssh://gpu",
        *(f"serviceHosts.{name}={SECOND_HOST}" for name in SECOND_HOST_PLACED),
    ]
    evaluation, config = make_evaluation(ROOT, "hemma", configs, [])
    text = report.render(document(evaluation, config))
    lines = text.splitlines()

    def block(container: str) -> list[str]:
        at = lines.index(f"    {container}")
        return lines[at + 1 : at + 4]

    assert "      machine   gpu" in block("huleedu_essay_embed_offload")
    assert not any("machine" in line for line in block("huleedu_nlp_service"))
