"""Start-first deploys: which services overlap with their old copy, and what makes
the new one start beside the old one (its name, the explicit override, the alias and
label by which everything else still finds it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pulumi
import pytest

from components.config.checks import check_catalog
from components.config.reading import parse
from components.foundation.containers import input_digest
from components.model.app import App, LocalPort
from components.model.rollout import NAME_DIGEST_LENGTH, SERVICE_LABEL
from tests.harness import (
    OPERATOR_SECRETS,
    ROOT,
    Declared,
    Program,
    as_cli_value,
    run_program,
    service_name,
    site_config,
    with_classhub,
)

START_FIRST = {
    "skriptoteket-web",
    "huleedu_bff_teacher_service",
    "huleedu_api_gateway_service",
    "huleedu_websocket_service",
    "classhub_web",
    "helper_web",
}
DIGEST_NAME = re.compile(r"(?P<service>.+)-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program(with_classhub(site_config()))


def test_only_the_routed_stateless_services_deploy_start_first(program: Program) -> None:
    start_first = {
        name for name, container in program.services.items() if container.inputs["name"] != name
    }
    assert start_first == START_FIRST
    # The single writers and everything bound to a host port stay delete-first.
    for name in (
        "shared-postgres",
        "huleedu_kafka",
        "huleedu_redis",
        "classhub_redis",
        "classhub_minio",
        "grafana",
        "prometheus",
        "jaeger",
        "loki",
        "classhub_ollama",
        "huleedu_language_tool_service",
        "huleedu_essay_embed_offload",
        "nginx-proxy",
    ):
        container = program.container(name)
        assert container.inputs["name"] == name
        assert container.delete_before_replace and container.delete_before_replace_defined


def start_first(program: Program) -> list[Declared]:
    return [c for c in program.containers if service_name(c) in START_FIRST]


def test_a_start_first_container_is_named_by_its_inputs_and_replaced_create_first(
    program: Program,
) -> None:
    for container in start_first(program):
        name = container.inputs["name"]
        match = DIGEST_NAME.fullmatch(name)
        assert match and match["service"] == service_name(container), name
        assert container.delete_before_replace is False, name
        assert container.delete_before_replace_defined, f"{name}: explicit, over the default"
        assert "name" not in container.additional_secret_outputs, name


def test_others_still_reach_and_find_it_by_its_stable_name(program: Program) -> None:
    for container in start_first(program):
        service = service_name(container)
        labels = {label["label"]: label["value"] for label in container.inputs["labels"]}
        assert labels[SERVICE_LABEL] == service
        for network in container.inputs["networksAdvanced"]:
            assert service in network["aliases"], (service, network["name"])


def test_its_migration_runs_inside_the_new_container(program: Program) -> None:
    web = program.container("skriptoteket-web")
    migrate = program.named("skriptoteket-web-migrate")
    assert f"container={web.inputs['name']}\n" in migrate.inputs["create"]
    assert web.urn in migrate.dependencies


def test_the_same_inputs_give_the_same_name_and_a_change_gives_a_new_one() -> None:
    before = run_program(site_config())
    again = run_program(site_config(), fresh=True)
    edited = run_program(
        {**site_config(), "extraEnv": {"skriptoteket-web": {"LOG_LEVEL": "debug"}}}, fresh=True
    )
    names = {name: c.inputs["name"] for name, c in before.services.items()}
    assert names == {name: c.inputs["name"] for name, c in again.services.items()}
    changed = {name for name, c in edited.services.items() if c.inputs["name"] != names[name]}
    assert changed == {"skriptoteket-web"}


@pulumi.runtime.test
def test_the_digest_is_keyed_so_a_stack_file_cannot_test_guesses_of_a_secret() -> pulumi.Output[
    None
]:
    inputs = {"envs": ["PASSWORD=hunter2"], "image": "sha256:1"}
    plain = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def check(digests: list[str]) -> None:
        same, again, other_key, other_value = digests
        assert re.fullmatch(r"[0-9a-f]{64}", same) and same == again
        assert same != plain, "not a plain hash of the inputs"
        assert other_key != same, "the key is part of the digest"
        assert other_value != same, "a secret's change is a new digest"

    return pulumi.Output.all(
        input_digest(inputs, "key-1"),
        input_digest(dict(reversed(list(inputs.items()))), "key-1"),
        input_digest(inputs, "key-2"),
        input_digest({**inputs, "envs": ["PASSWORD=hunter3"]}, "key-1"),
    ).apply(check)


def test_the_name_is_drawn_again_whenever_the_digest_of_the_inputs_changes(
    program: Program,
) -> None:
    """A RandomId kept by the digest: a change back to earlier inputs draws a new name
    too, so it cannot collide with an old copy that still exists."""
    ids = {r.name: r for r in program.of_type("random:index/randomId:RandomId")}
    for container in start_first(program):
        suffix = ids[f"{container.name}-name"]
        assert suffix.parent == container.parent
        assert int(suffix.inputs["byteLength"]) == 6
        assert re.fullmatch(r"[0-9a-f]{64}", suffix.inputs["keepers"]["inputs"])
        assert container.inputs["name"] == f"{service_name(container)}-{suffix.state['hex']}"
    assert len(ids) == len(START_FIRST)


def test_a_service_that_cannot_overlap_is_refused_start_first() -> None:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    web = next(
        s for app in config.apps() for s in app.services if s.container == "skriptoteket-web"
    )
    app = App(name="skriptoteket", services=(web,))
    assert check_catalog((app,)) == []
    ported = dataclasses.replace(web, localhost_ports=(LocalPort(8000, 18000),))
    assert check_catalog((dataclasses.replace(app, services=(ported,)),)) == [
        "the skriptoteket app: skriptoteket-web is start-first but publishes host port "
        "18000: two copies cannot hold it (delete-first)"
    ]
    single = dataclasses.replace(web, overlap_volumes=())
    assert check_catalog((dataclasses.replace(app, services=(single,)),)) == [
        "the skriptoteket app: skriptoteket-web is start-first but volume "
        "'skriptoteket-artifacts' is single-writer (list it in overlap_volumes only if two "
        "copies may write it at once)"
    ]
    delete_first = dataclasses.replace(single, rollout="delete-first")
    assert check_catalog((dataclasses.replace(app, services=(delete_first,)),)) == []


def test_every_tool_finds_a_start_first_container_by_the_same_label() -> None:
    """The doctor and the policy pack import nothing of the program; the drill is bash."""
    from ops import rollout
    from policy.validators import SERVICE_LABEL as pack

    drill = (ROOT / "components" / "backups" / "files" / "hemma-drill.sh").read_text()
    assert rollout.SERVICE_LABEL == pack == SERVICE_LABEL
    assert rollout.NAME_DIGEST_LENGTH == NAME_DIGEST_LENGTH
    assert f"\nreadonly SERVICE_LABEL={SERVICE_LABEL}\n" in drill


def test_the_old_copy_is_drained_once_the_new_one_is_healthy(program: Program) -> None:
    for container in start_first(program):
        service = service_name(container)
        drain = next(
            c for c in program.of_type("command:remote:Command") if c.name.endswith("-drain")
            and f"new={container.inputs['name']}\n" in c.inputs["create"]
        )  # fmt: skip
        script = drain.inputs["create"]
        assert container.urn in drain.dependencies
        assert drain.inputs["triggers"] == [container.id], "again for each new copy"
        assert f"service={service}\n" in script and "proxy=nginx-proxy\n" in script
        assert f"label={SERVICE_LABEL}\n" in script
        migrations = [
            c for c in program.of_type("command:remote:Command")
            if c.name == f"{drain.name.removesuffix('-drain')}-migrate"
        ]  # fmt: skip
        for migration in migrations:
            assert migration.urn in drain.dependencies, "after the migration's health wait"


def test_a_start_first_check_fails_while_draining_and_tolerates_thirty_seconds(
    program: Program,
) -> None:
    for container in start_first(program):
        check = container.inputs["healthcheck"]
        assert check["tests"][1].startswith("test ! -e /tmp/hemma-drain && { ")
        assert (check["interval"], check["retries"]) == ("5s", 6), service_name(container)
    grafana = program.container("grafana").inputs["healthcheck"]
    assert "hemma-drain" not in grafana["tests"][1] and grafana["interval"] == "15s"


def test_a_start_first_service_must_be_routed() -> None:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    services = [s for app in config.apps() for s in app.services]
    web = next(s for s in services if s.container == "skriptoteket-web")
    unrouted = dataclasses.replace(web, route=None)
    assert check_catalog((App(name="skriptoteket", services=(unrouted,)),)) == [
        "the skriptoteket app: skriptoteket-web is start-first but not routed: its drain "
        "waits on nginx-proxy"
    ]


def test_a_start_first_service_is_not_stopped_by_the_backup() -> None:
    config = parse({k: as_cli_value(v) for k, v in site_config().items()}, OPERATOR_SECRETS)
    services = [s for app in config.apps() for s in app.services]
    web = next(s for s in services if s.container == "skriptoteket-web")
    stopped = dataclasses.replace(web, volume_backups={"skriptoteket-artifacts": "stop"})
    assert check_catalog((App(name="skriptoteket", services=(stopped,)),)) == [
        "the skriptoteket app: skriptoteket-web is start-first but its backup stops it for "
        "volume 'skriptoteket-artifacts' (by a name that changes with each deploy)"
    ]


def test_nginx_proxy_routes_only_to_healthy_containers_and_its_own_check_cannot_time_out(
    program: Program,
) -> None:
    proxy = program.container("nginx-proxy").inputs
    assert "DOCKER_CONTAINER_FILTERS=health=healthy,health=none" in proxy["envs"]
    assert proxy["healthcheck"]["tests"] == ["CMD-SHELL", 'kill -0 "$(cat /var/run/nginx.pid)"']
