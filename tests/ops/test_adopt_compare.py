"""The survey's comparison of what Hemma runs with what replaces it, on the plan of
the default config (``scripts/plan --json``) and containers as ``docker inspect``
shows them. The same cases on the private engine, through scripts/adopt over sshd:
tests/rehearsal/test_adoption_survey.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ops.adopt.compare import compare, repository
from ops.adopt.observe import Observed, parse_docker
from ops.adopt.plan import Plan

KAFKA = "huleedu_kafka"


def inspected(
    name: str,
    image: str,
    mounts: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    ports: dict[str, list[tuple[str, str]]] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """One container as the survey's ``docker container inspect --format`` prints it."""
    return json.dumps({
        "name": f"/{name}", "id": name + "0" * 12, "image": image, "state": "running",
        "running": True, "restart": {"Name": "unless-stopped"}, "labels": labels,
        "mounts": [{"Type": t, "Name": n if t == "volume" else "", "Source": f"/src/{n}",
                    "Destination": d} for t, n, d in mounts],
        "ports": {
            key: [{"HostIp": ip, "HostPort": port} for ip, port in bindings]
            for key, bindings in (ports or {}).items()
        },
    })  # fmt: skip


def running(*lines: str) -> Observed:
    return parse_docker("\n".join(["#containers", *lines]))


def plan_of(plan_json: dict[str, Any], **config: Any) -> Plan:
    data = copy.deepcopy(plan_json)
    data["config"].update({k: json.dumps(v) for k, v in config.items()})
    return Plan(data, "plan.json")


@pytest.mark.parametrize(
    "volume", ["huleedu_huleedu_kafka_data", "huleedu_kafka_data"], ids=["prefixed", "named"]
)
def test_kafka_keeping_its_data_at_another_path_stops_the_adoption(
    plan_json: dict[str, Any], volume: str
) -> None:
    """The runbooks drive a bitnami-style Kafka (kafka-topics.sh): its data is at
    /bitnami/kafka. The program runs apache/kafka with it at /var/lib/kafka/data."""
    observed = running(
        inspected(KAFKA, "bitnami/kafka:3.6", [("volume", volume, "/bitnami/kafka")])
    )
    found = compare(plan_of(plan_json), observed)
    assert found.stops == [
        f"{KAFKA} keeps its data in {volume} at /bitnami/kafka (image bitnami/kafka:3.6); the "
        "program mounts huleedu_kafka_data at /var/lib/kafka/data (image apache/kafka:3.8.1), "
        "so the first up would start it EMPTY. Move the data into huleedu_kafka_data first, or "
        "let it start empty (README, 'Data kept at another path'), then: scripts/pulumi config "
        "set --path 'adoptAsIs[0]' huleedu_kafka_data"
    ]
    assert f"IMAGE {KAFKA} runs bitnami/kafka:3.6; the program runs apache/kafka:3.8.1" in (
        found.notes
    )
    assert not [n for n in found.notes if n.startswith("DROPPED")], "named in the stop instead"

    accepted = compare(plan_of(plan_json, adoptAsIs=["huleedu_kafka_data"]), observed)
    assert accepted.stops == []
    assert any(n.startswith(f"ACCEPTED {KAFKA} keeps its data in") for n in accepted.notes)


def test_data_kept_inside_the_container_stops_the_adoption(plan_json: dict[str, Any]) -> None:
    found = compare(plan_of(plan_json), running(inspected(KAFKA, "apache/kafka:3.8.1")))
    assert len(found.stops) == 1
    assert found.stops[0].startswith(
        f"{KAFKA} keeps its data in inside the container (no volume) (image apache/kafka:3.8.1)"
    )


def test_the_declared_path_under_another_image_is_named(plan_json: dict[str, Any]) -> None:
    """The volume sits where the program mounts it, but another product wrote it: a
    bitnami Kafka keeps its KRaft metadata in its own layout."""
    kafka = inspected(KAFKA, "bitnami/kafka:3.6", [("volume", "kd", "/var/lib/kafka/data")])
    found = compare(plan_of(plan_json), running(kafka))
    assert found.stops == []
    assert (
        f"IMAGE {KAFKA} keeps its data at /var/lib/kafka/data under image bitnami/kafka:3.6; "
        "the program mounts huleedu_kafka_data there under apache/kafka:3.8.1: check that it "
        "reads what is there before the swap"
    ) in found.notes
    same = inspected(
        KAFKA, "docker.io/apache/kafka:3.7.0", [("volume", "kd", "/var/lib/kafka/data")]
    )
    assert not [
        n for n in compare(plan_of(plan_json), running(same)).notes if "keeps its data" in n
    ]


def test_a_cache_somewhere_else_or_nowhere_stops_nothing(plan_json: dict[str, Any]) -> None:
    """The offload server's model cache is no data: the backups leave it out."""
    observed = running(
        inspected("huleedu_essay_embed_offload", "huleedu-offload:1", [("volume", "hf", "/hf")]),
        inspected(KAFKA, "apache/kafka:3.8.1", [("volume", "kd", "/var/lib/kafka/data")]),
    )
    found = compare(plan_of(plan_json), observed)
    assert found.stops == []
    assert any(
        n.startswith("DROPPED huleedu_essay_embed_offload mounts hf at /hf") for n in found.notes
    )


def test_a_container_of_another_name_on_a_declared_port_stops_the_adoption(
    plan_json: dict[str, Any],
) -> None:
    """The runbooks only grep language_tool: compose named it after its project."""
    observed = running(
        inspected(
            "huledu-reboot-language_tool_service-1", "huledu-reboot-language_tool_service",
            ports={"8085/tcp": [("127.0.0.1", "8085")]},
            labels={"com.docker.compose.service": "language_tool_service"},
        ),
    )  # fmt: skip
    found = compare(plan_of(plan_json), observed)
    assert found.stops == [
        "huledu-reboot-language_tool_service-1 holds 127.0.0.1:8085, which "
        "huleedu_language_tool_service will publish, and the swap leaves it running (it is not "
        "declared): the first up would fail on the port. Rename it to "
        "huleedu_language_tool_service if it is that service, or stop it"
    ]
    assert (
        "LIKELY huleedu_language_tool_service runs here as huledu-reboot-language_tool_service-1"
        " (compose service language_tool_service, publishes 8085): the swap leaves it alone,"
        " beside the new one. `docker rename huledu-reboot-language_tool_service-1"
        " huleedu_language_tool_service` and survey again, so that the swap stops and keeps it"
    ) in found.notes

    # On every address, it holds the loopback port too.
    wide = running(inspected("lt", "x", ports={"8085/tcp": [("", "8085")]}))
    assert len(compare(plan_of(plan_json), wide).stops) == 1
    # On another address, it does not.
    other = running(inspected("lt", "x", ports={"8085/tcp": [("10.0.0.5", "8085")]}))
    assert compare(plan_of(plan_json), other).stops == []


def test_an_acme_companion_under_its_compose_name_is_named_as_likely(
    plan_json: dict[str, Any],
) -> None:
    observed = running(inspected("nginx-proxy-acme", "nginxproxy/acme-companion:2.4"))
    found = compare(plan_of(plan_json), observed)
    assert found.stops == []
    assert any(
        n.startswith("LIKELY acme-companion runs here as nginx-proxy-acme (image ")
        for n in found.notes
    )


def test_mounts_the_program_does_not_carry_over_are_named_with_what_to_do(
    plan_json: dict[str, Any],
) -> None:
    observed = running(
        inspected(
            "nginx-proxy", "nginxproxy/nginx-proxy:1.6",
            [("volume", "certs", "/etc/nginx/certs"), ("volume", "vhost", "/etc/nginx/vhost.d"),
             ("bind", "htpasswd", "/etc/nginx/htpasswd"),
             ("bind", "docker.sock", "/tmp/docker.sock")],
        ),
        inspected(
            "shared-postgres", "postgres:16-alpine",
            [("volume", "pg", "/var/lib/postgresql/data"),
             ("bind", "init", "/docker-entrypoint-initdb.d")],
        ),
    )  # fmt: skip
    found = compare(plan_of(plan_json), observed)
    assert found.stops == []
    dropped = sorted(n for n in found.notes if n.startswith(("DROPPED", "REPLACED")))
    assert [n.split(": ")[0] for n in dropped] == [
        "DROPPED shared-postgres mounts /src/init at /docker-entrypoint-initdb.d, which the "
        "program does not",
        "REPLACED nginx-proxy mounts /src/htpasswd at /etc/nginx/htpasswd; the program mounts "
        "nginx-proxy-htpasswd there",
        "REPLACED nginx-proxy mounts vhost at /etc/nginx/vhost.d; the program mounts "
        "nginx-proxy-vhost there",
    ]
    assert "runs only on an empty data directory" in dropped[0]
    assert "basicAuthCredentials --show-secrets" in dropped[1]
    assert "per-host nginx settings" in dropped[2]
    assert not [n for n in found.notes if n.startswith("IMAGE")], "the same images"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("apache/kafka:3.8.1", "apache/kafka"),
        ("docker.io/library/postgres:16-alpine", "postgres"),
        ("postgres@sha256:" + "a" * 64, "postgres"),
        ("localhost:5000/team/app:1", "team/app"),
        ("ghcr.io/org/img", "org/img"),
        ("registry:5000/img:2", "img"),
    ],
)
def test_an_image_is_compared_by_its_repository(image: str, expected: str) -> None:
    assert repository(image) == expected


def test_ports_a_swapped_container_publishes_otherwise_are_named(
    plan_json: dict[str, Any],
) -> None:
    """The hand-made database on every address; the program's on 127.0.0.1 only."""
    observed = running(
        inspected(
            "shared-postgres", "postgres:16-alpine", [("volume", "pg", "/var/lib/postgresql/data")],
            ports={"5432/tcp": [("", "5432")]},
        ),
    )  # fmt: skip
    found = compare(plan_of(plan_json), observed)
    assert "PORTS shared-postgres publishes *:5432; the program publishes 127.0.0.1:5432" in (
        found.notes
    )
    assert found.stops == [], "a container the swap stops frees its own ports"
