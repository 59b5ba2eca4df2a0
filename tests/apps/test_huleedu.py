"""HuleEdu as runbooks 000 and 001 run it."""

from __future__ import annotations

import copy

import pytest

from tests.harness import OPERATOR_VALUES, Declared, Program, run_program, site_config

PASSWORD = "random:index/randomPassword:RandomPassword"


HULEEDU_SERVICES = {
    "api_gateway_service", "bff_teacher_service", "websocket_service", "content_service",
    "essay_lifecycle_service", "nlp_service", "llm_provider_service", "cj_assessment_service",
    "batch_conductor_service", "batch_orchestrator_service", "class_management_service",
    "email_service", "entitlements_service", "file_service", "identity_service",
    "result_aggregator_service", "spellchecker_service",
}  # fmt: skip


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def ports(container: Declared) -> list[tuple[str, int, int]]:
    return [(p["ip"], p["external"], p["internal"]) for p in container.inputs.get("ports", [])]


def test_every_huleedu_service_runs_with_its_own_database(program: Program) -> None:
    containers = program.services
    for service in HULEEDU_SERVICES:
        assert f"huleedu_{service}" in containers, service
    with_db = {
        env(c)["DATABASE_NAME"]
        for name, c in containers.items()
        if name.startswith("huleedu_") and "DATABASE_NAME" in env(c)
    }
    assert with_db == set(program.outputs["appDatabases"]["huleedu"]["databases"])
    content = containers["huleedu_content_service"]
    assert env(content)["ENVIRONMENT"] == "production"
    assert env(content)["HULEEDU_DB_USER"] == "huleedu_user"
    assert "shared-postgres" in env(content)["DATABASE_URL"]
    assert "hule-network" in networks(content), "it must reach shared-postgres"


def test_kafka_and_redis_are_on_the_internal_network_only(program: Program) -> None:
    for name in ("huleedu_kafka", "huleedu_redis"):
        container = program.container(name)
        assert networks(container) == {"huleedu_internal_network"}, name
        assert ports(container) == [], name


def test_huleedu_gets_the_runbook_env_and_secrets_only_where_needed(program: Program) -> None:
    gateway = env(program.container("huleedu_api_gateway_service"))
    generated = {r.name: r.state["result"] for r in program.of_type(PASSWORD)}
    assert gateway["JWT_SECRET_KEY"] == generated["huleedu-jwt-secret"]
    assert gateway["HULEEDU_INTERNAL_API_KEY"] == generated["huleedu-internal-api-key"]
    assert gateway["EMAIL_SMTP_HOST"] == "mail.privateemail.com"
    assert gateway["EMAIL_SMTP_PORT"] == "587"
    assert gateway["NLP_SERVICE_LOCAL_LLM_ENABLED"] == "true"
    with_llm_keys = {c.inputs["name"] for c in program.containers if "OPENAI_API_KEY" in env(c)}
    assert with_llm_keys == {"huleedu_llm_provider_service", "huleedu_cj_assessment_service"}
    with_smtp = {c.inputs["name"] for c in program.containers if "EMAIL_SMTP_PASSWORD" in env(c)}
    assert with_smtp == {"huleedu_email_service"}
    assert (
        env(program.container("huleedu_email_service"))["EMAIL_SMTP_PASSWORD"]
        == (OPERATOR_VALUES["smtpPassword"])
    )


def test_nlp_and_llm_provider_reach_the_host_gpu(program: Program) -> None:
    for name in ("huleedu_nlp_service", "huleedu_llm_provider_service"):
        hosts = program.container(name).inputs["hosts"]
        assert {"host": "host.docker.internal", "ip": "host-gateway"} in hosts, name


def test_the_research_services_listen_on_localhost_only(program: Program) -> None:
    assert ports(program.container("huleedu_language_tool_service")) == [("127.0.0.1", 8085, 8085)]
    offload = program.container("huleedu_essay_embed_offload")
    assert ports(offload) == [("127.0.0.1", 9000, 9000)]
    mounts = {v.get("volumeName"): v["containerPath"] for v in offload.inputs["volumes"]}
    assert mounts["huleedu_hf_cache"] == "/root/.cache/huggingface"
    assert [d["hostPath"] for d in offload.inputs["devices"]] == ["/dev/kfd", "/dev/dri"]
    assert env(offload)["OFFLOAD_TORCH_DEVICE"] == "cuda"
    assert env(offload)["OFFLOAD_HTTP_PORT"] == "9000"


def test_the_offload_device_is_configurable() -> None:
    config = copy.deepcopy(site_config())
    config["huleedu"] = {**config["huleedu"], "offloadTorchDevice": "cpu", "offloadDevices": []}
    offload = run_program(config).container("huleedu_essay_embed_offload")
    assert env(offload)["OFFLOAD_TORCH_DEVICE"] == "cpu"
    assert not offload.inputs.get("devices")
