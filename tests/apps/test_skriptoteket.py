"""Skriptoteket as runbooks 002 and 003 run it."""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

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


def forwarded(trusted: str, peer: str, headers: dict[str, str]) -> tuple[str, str]:
    """What uvicorn makes of a request: (client address, scheme), through its real
    ProxyHeadersMiddleware with FORWARDED_ALLOW_IPS set to ``trusted``."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {
        "type": "http",
        "scheme": "http",
        "client": (peer, 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=trusted)(scope, None, None))  # type: ignore[arg-type]
    return seen["client"][0], seen["scheme"]


NGINX_PROXY = "172.18.0.2"
"""nginx-proxy's address on hule-network (a Docker bridge network)."""


def test_skriptoteket_redirects_stay_on_https(program: Program) -> None:
    """uvicorn reads FORWARDED_ALLOW_IPS from the env; the image keeps its serve command."""
    web = program.container("skriptoteket-web")
    trusted = env(web)["FORWARDED_ALLOW_IPS"]
    assert forwarded(trusted, NGINX_PROXY, {"X-Forwarded-Proto": "https"})[1] == "https"
    assert not web.inputs.get("command"), "the image's own serve command is kept"


def test_a_client_cannot_choose_the_address_skriptoteket_records(program: Program) -> None:
    """nginx-proxy appends the real client to X-Forwarded-For (TRUST_DOWNSTREAM_PROXY=false
    keeps the rest from the client); uvicorn must take that entry, not the client's own."""
    trusted = env(program.container("skriptoteket-web"))["FORWARDED_ALLOW_IPS"]
    spoofed = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"}
    assert forwarded(trusted, NGINX_PROXY, spoofed)[0] == "203.0.113.9"
    assert forwarded("*", NGINX_PROXY, spoofed)[0] == "6.6.6.6", "what '*' would have done"
    direct = forwarded(trusted, "203.0.113.50", spoofed)
    assert direct == ("203.0.113.50", "http"), "headers count only from the proxy's network"


def test_skriptoteket_reaches_the_host_gpu_servers(program: Program) -> None:
    web = program.container("skriptoteket-web")
    assert {"host": "host.docker.internal", "ip": "host-gateway"} in web.inputs["hosts"]
    assert env(web)["LLM_COMPLETIONS_URL"] == "http://host.docker.internal:8082"
    assert env(web)["TABBY_URL"] == "http://host.docker.internal:8083"


def test_the_runner_image_is_built_and_runners_join_the_huleedu_network(program: Program) -> None:
    web = program.container("skriptoteket-web")
    runner = program.named("skriptoteket-web-extra-image-0")
    build = shlex.split(runner.inputs["create"])
    assert build[:4] == ["docker", "--host", "ssh://hemma", "build"]
    assert env(web)["RUNNER_IMAGE"] == "skriptoteket-runner:hemma"
    assert "skriptoteket-runner:hemma" in build, "web starts runners by the stable tag"
    assert build[build.index("--file") + 1].endswith("/Dockerfile.runner")
    assert runner.urn in web.dependencies, "the runner image exists before web starts runners"
    assert env(web)["RUNNER_NETWORK"] == "huleedu_internal_network"
    sockets = [v for v in web.inputs["volumes"] if v.get("hostPath") == "/var/run/docker.sock"]
    assert sockets and not sockets[0].get("readOnly")
