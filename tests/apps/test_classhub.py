"""Class Hub as runbook 004 runs it, behind nginx-proxy."""

from __future__ import annotations

import hashlib

import pytest

from tests.harness import Declared, Program, run_program, site_config, with_classhub
from tests.proxy.files import per_host


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def ports(container: Declared) -> list[tuple[str, int, int]]:
    return [(p["ip"], p["external"], p["internal"]) for p in container.inputs.get("ports", [])]


def test_class_hub_is_off_unless_enabled(program: Program) -> None:
    names = {c.inputs["name"] for c in program.containers}
    assert not {n for n in names if n.startswith(("classhub", "helper"))}
    assert "classhub" not in program.outputs["appDatabases"]


def test_class_hub_runs_behind_nginx_proxy_with_its_limits_and_shared_token() -> None:
    program = run_program(with_classhub(site_config()))
    web, helper = program.container("classhub_web"), program.container("helper_web")
    assert env(web)["VIRTUAL_HOST"] == "classhub.hule.education"
    assert "VIRTUAL_PATH" not in env(web)
    assert env(helper)["VIRTUAL_HOST"] == "classhub.hule.education"
    assert env(helper)["VIRTUAL_PATH"] == "/helper/", "the runbook serves the helper at /helper/"
    assert env(helper)["LETSENCRYPT_HOST"] == "classhub.hule.education"
    files = per_host(program)
    assert "client_max_body_size 650m;" in files["vhost.d/classhub.hule.education"]
    # nginx-proxy's per-path location file: vhost.d/<host>_<sha1(VIRTUAL_PATH)>_location
    helper_location = "vhost.d/classhub.hule.education_" + (
        hashlib.sha1(b"/helper/").hexdigest() + "_location"
    )
    assert files[helper_location] == "client_max_body_size 1m;\n"
    assert program.outputs["healthChecks"]["public"]["classhub.hule.education/helper/"] == (
        "https://classhub.hule.education/helper/healthz"
    )
    assert program.outputs["dnsRecords"].count("classhub.hule.education") == 1
    token = env(web)["CLASSHUB_INTERNAL_EVENTS_TOKEN"]
    assert token == env(helper)["CLASSHUB_INTERNAL_EVENTS_TOKEN"]
    assert token == program.named("classhub-internal-events-token").state["result"]
    assert env(helper)["HELPER_MAX_CONCURRENCY"] == "2"
    assert env(helper)["HELPER_QUEUE_MAX_WAIT_SECONDS"] == "10"
    assert env(helper)["HELPER_QUEUE_POLL_SECONDS"] == "0.2"
    assert env(helper)["HELPER_QUEUE_SLOT_TTL_SECONDS"] == "120"
    assert ports(program.container("classhub_ollama")) == [("127.0.0.1", 11434, 11434)]
    assert program.outputs["appDatabases"]["classhub"] == {
        "role": "classhub",
        "databases": ["classhub"],
    }
    assert "shared-postgres:5432/classhub" in env(web)["DATABASE_URL"]
    for name in ("classhub_minio", "classhub_redis", "classhub_ollama"):
        assert networks(program.container(name)) == {"classhub_internal_network"}, name


def protected_urns(program: Program) -> set[str]:
    return {r.urn for r in program.declared if r.protect}


def test_switching_class_hub_off_with_keep_data_keeps_its_data_and_removes_the_rest() -> None:
    running = run_program(with_classhub(site_config()))
    config = with_classhub(site_config())
    config["classHub"] = {**config["classHub"], "enabled": False, "keepData": True}
    off = run_program(config)
    kept = {r.urn for r in off.declared}
    assert protected_urns(running) <= kept, "every volume, role and database stays declared"
    names = {c.inputs["name"] for c in off.containers}
    assert not {n for n in names if n.startswith(("classhub", "helper"))}
    assert not [r for r in off.declared if "classhub-" in r.name and r.type.startswith("command")]
    assert "classhub" not in off.outputs["containers"]
    assert "classhub" not in off.outputs["appDatabases"]
    secrets = {r.urn for r in running.declared if r.name.startswith("classhub-django")}
    assert secrets <= kept, "its generated secrets stay, for when it is switched on again"


def test_switching_class_hub_off_without_keep_data_would_delete_protected_resources() -> None:
    """What `up` then refuses ("protected"): the README tells the operator to set keepData."""
    running = run_program(with_classhub(site_config()))
    config = with_classhub(site_config())
    config["classHub"] = {**config["classHub"], "enabled": False}
    gone = protected_urns(running) - {r.urn for r in run_program(config).declared}
    assert gone, "the engine stops on these rather than deleting them"
    assert all("classhub" in urn for urn in gone)
