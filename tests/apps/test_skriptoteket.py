"""Skriptoteket as runbooks 002 and 003 run it."""

from __future__ import annotations

import pytest

from tests.harness import Declared, Program, run_program


@pytest.fixture
def program() -> Program:
    return run_program()


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def networks(container: Declared) -> set[str]:
    return {n["name"] for n in container.inputs.get("networksAdvanced", [])}


def test_skriptoteket_web_reaches_its_database_by_the_runbook_url(program: Program) -> None:
    web = program.container("skriptoteket-web")
    password = next(
        r.inputs["password"]
        for r in program.of_type("postgresql:index/role:Role")
        if r.inputs["name"] == "skriptoteket"
    )
    assert env(web)["DATABASE_URL"] == (
        f"postgresql+asyncpg://skriptoteket:{password}@shared-postgres:5432/skriptoteket"
    )
    mounts = {v.get("volumeName"): v["containerPath"] for v in web.inputs["volumes"]}
    assert mounts["skriptoteket-artifacts"] == "/app/.artifacts"
    assert networks(web) == {"hule-network"}


def test_skriptoteket_redirects_stay_on_https(program: Program) -> None:
    """uvicorn reads FORWARDED_ALLOW_IPS from the env; the image keeps its serve command."""
    web = program.container("skriptoteket-web")
    assert env(web)["FORWARDED_ALLOW_IPS"] == "*"
    assert not web.inputs.get("command"), "the image's own serve command is kept"


def test_skriptoteket_reaches_the_host_gpu_servers(program: Program) -> None:
    web = program.container("skriptoteket-web")
    assert {"host": "host.docker.internal", "ip": "host-gateway"} in web.inputs["hosts"]
    assert env(web)["LLM_COMPLETIONS_URL"] == "http://host.docker.internal:8082"
    assert env(web)["TABBY_URL"] == "http://host.docker.internal:8083"


def test_the_runner_image_is_built_and_runners_join_the_huleedu_network(program: Program) -> None:
    web = program.container("skriptoteket-web")
    runner = program.named("skriptoteket-web-extra-image-0")
    assert runner.inputs["imageName"] == env(web)["RUNNER_IMAGE"] == "skriptoteket-runner:hemma"
    assert runner.inputs["build"]["dockerfile"].endswith("Dockerfile.runner")
    assert runner.urn in web.dependencies, "the runner image exists before web starts runners"
    assert env(web)["RUNNER_NETWORK"] == "huleedu_internal_network"
    sockets = [v for v in web.inputs["volumes"] if v.get("hostPath") == "/var/run/docker.sock"]
    assert sockets and not sockets[0].get("readOnly")
