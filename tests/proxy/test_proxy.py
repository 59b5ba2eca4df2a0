"""nginx-proxy and acme-companion as the runbooks run them, checked on what the program declares."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.proxy.htpasswd import apr1
from components.proxy.reload import inside_script
from tests.harness import (
    Declared,
    Program,
    run_program,
    service_name,
    site_config,
)
from tests.proxy.files import RELOAD_STEP, SETTLE_STEP, nginx_files

PUBLIC_HOSTS = [
    "api.huleedu.hule.education",
    "grafana.hemma.hule.education",
    "huleedu.hule.education",
    "jaeger.hemma.hule.education",
    "prometheus.hemma.hule.education",
    "skriptoteket.hule.education",
    "ws.huleedu.hule.education",
]


@pytest.fixture
def program() -> Program:
    return run_program()


def volume_mounts(container: Declared) -> dict[str, dict[str, Any]]:
    return {v["containerPath"]: v for v in container.inputs["volumes"]}


def env(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs.get("envs", []))


def test_nginx_proxy_runs_the_runbook_image_with_socket_certs_and_html(program: Program) -> None:
    proxy = program.container("nginx-proxy")
    image = program.named("proxy-nginx-proxy-image")
    assert image.inputs["name"] == "nginxproxy/nginx-proxy:1.11"
    assert proxy.inputs["image"].startswith("sha256:"), "the container follows the pulled image ID"
    mounts = volume_mounts(proxy)
    assert mounts["/tmp/docker.sock"]["hostPath"] == "/var/run/docker.sock"
    assert mounts["/tmp/docker.sock"]["readOnly"] is True
    assert mounts["/etc/nginx/certs"]["volumeName"] == "nginx-proxy-certs"
    assert mounts["/usr/share/nginx/html"]["volumeName"] == "nginx-proxy-html"
    assert mounts["/etc/nginx/vhost.d"]["volumeName"] == "nginx-proxy-vhost"
    assert mounts["/etc/nginx/htpasswd"]["volumeName"] == "nginx-proxy-htpasswd"
    assert {"label": "com.github.nginx-proxy.nginx", "value": "true"} in proxy.inputs["labels"]
    assert [n["name"] for n in proxy.inputs["networksAdvanced"]] == ["hule-network"]


def test_acme_companion_finds_the_proxy_and_shares_its_volumes(program: Program) -> None:
    companion = program.container("acme-companion")
    assert program.named("proxy-acme-companion-image").inputs["name"] == (
        "nginxproxy/acme-companion:2.4"
    )
    mounts = volume_mounts(companion)
    assert mounts["/var/run/docker.sock"]["hostPath"] == "/var/run/docker.sock"
    assert mounts["/var/run/docker.sock"]["readOnly"] is True
    assert mounts["/etc/acme.sh"]["volumeName"] == "acme-companion-acme"
    for writable in ("/etc/nginx/certs", "/usr/share/nginx/html"):
        assert not mounts[writable].get("readOnly"), f"acme-companion must write {writable}"
    assert mounts["/etc/nginx/certs"]["volumeName"] == "nginx-proxy-certs"
    variables = env(companion)
    assert variables["DEFAULT_EMAIL"] == "admin@hule.education"
    assert variables["NGINX_PROXY_CONTAINER"] == "nginx-proxy"
    assert "ACME_CA_URI" not in variables


def test_staging_switches_acme_companion_to_the_staging_ca() -> None:
    program = run_program({**site_config(), "acmeStaging": True})
    assert "acme-staging" in env(program.container("acme-companion"))["ACME_CA_URI"]


def test_only_80_and_443_listen_on_a_public_address(program: Program) -> None:
    public = []
    for container in program.containers:
        for port in container.inputs.get("ports", []):
            if port.get("ip") != "127.0.0.1":
                public.append((container.inputs["name"], port["ip"], port["external"]))
    assert sorted(public) == [
        ("nginx-proxy", "0.0.0.0", 80),
        ("nginx-proxy", "0.0.0.0", 443),
        ("nginx-proxy", "::", 80),
        ("nginx-proxy", "::", 443),
    ], "IPv4 and IPv6 (runbook 000's AAAA records), 80 and 443 only"


def test_the_proxy_trusts_no_forwarded_header_a_client_sends(program: Program) -> None:
    """nginx-proxy 1.6 passes a client's own X-Forwarded-Proto/Host/Port through unless
    TRUST_DOWNSTREAM_PROXY is false; nothing sits in front of it on Hemma."""
    assert env(program.container("nginx-proxy"))["TRUST_DOWNSTREAM_PROXY"] == "false"


def test_unknown_hosts_get_the_default_server_that_drops_them(program: Program) -> None:
    files = nginx_files(program)
    default_server = files["conf.d/hemma-unknown-hosts.conf"]
    assert "listen 80 default_server;" in default_server
    assert "return 444;" in default_server
    assert "ssl_reject_handshake on;" in default_server


def test_every_host_is_hardened_and_size_limited_on_the_proxy(program: Program) -> None:
    files = nginx_files(program)
    assert "return 444" in files["hemma/edge-hardening.conf"]
    for host in [*PUBLIC_HOSTS, "default"]:
        snippet = files[f"vhost.d/{host}"]
        assert "include hemma/edge-hardening.conf;" in snippet, host
        assert "client_max_body_size 10m;" in snippet, host
    assert program.outputs["proxyPublicHosts"] == PUBLIC_HOSTS


def test_prometheus_and_jaeger_are_behind_basic_auth_with_a_generated_password(
    program: Program,
) -> None:
    files = nginx_files(program)
    protected = sorted(f.removeprefix("htpasswd/") for f in files if f.startswith("htpasswd/"))
    assert protected == ["jaeger.hemma.hule.education", "prometheus.hemma.hule.education"]
    assert program.named(RELOAD_STEP).secret_input("stdin"), "htpasswd must travel as a secret"
    credentials = program.outputs["basicAuthCredentials"]
    for host in protected:
        user, hashed = files[f"htpasswd/{host}"].strip().split(":", 1)
        _, _, salt, _ = hashed.split("$")
        assert user == credentials[host]["username"] == "admin"
        assert hashed == apr1(credentials[host]["password"], salt)


def test_every_routed_container_starts_after_the_proxy_has_its_files(program: Program) -> None:
    """A protected host's container must not be routed before its htpasswd is there:
    docker-gen renders basic auth only for a file that exists. The same holds for a
    new proxy, which renders at its start."""
    reload = program.named(RELOAD_STEP)
    routed = [c for c in program.containers if "VIRTUAL_HOST" in env_or_secret(c)]
    assert {service_name(c) for c in routed} >= {"prometheus", "jaeger", "skriptoteket-web"}
    for container in routed:
        assert reload.urn in container.dependencies, container.inputs["name"]
    assert reload.urn in program.container("nginx-proxy").dependencies, "a new proxy, too"
    # The htpasswd of a host that no longer asks for auth goes only once every
    # container that served it is the new one.
    settle = program.named(SETTLE_STEP)
    for container in [*routed, program.container("nginx-proxy")]:
        assert container.urn in settle.dependencies, container.inputs["name"]
    assert "mode=settle\n" in settle.inputs["create"] and "mode=add\n" in reload.inputs["create"]


def test_nginx_proxy_refuses_to_start_without_its_per_host_files(program: Program) -> None:
    """Its own entrypoint and command, behind a check: on empty volumes it would serve
    every host without its limits and basic auth."""
    proxy = program.container("nginx-proxy").inputs
    assert proxy["entrypoints"][:2] == ["/bin/sh", "-c"]
    assert proxy["entrypoints"][2].startswith("test -e /etc/nginx/vhost.d/default || ")
    assert proxy["entrypoints"][2].endswith('exec /app/docker-entrypoint.sh "$@"')
    assert proxy["command"] == ["forego", "start", "-r"], "the entrypoint sets up only for this"


def env_or_secret(container: Declared) -> str:
    return str(container.state.get("envs", ""))


@pytest.mark.tools
def test_the_reload_step_passes_shellcheck(program: Program, tmp_path: Path) -> None:
    """The host's bash as the step runs it (``bash -c``), and the script it hands the
    proxy as POSIX sh (Debian's dash in nginx-proxy's image)."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    hosts = []
    for step in (RELOAD_STEP, SETTLE_STEP):
        host = tmp_path / f"{step}.sh"
        host.write_text("#!/bin/bash\n" + shlex.split(program.named(step).inputs["create"])[2])
        hosts.append(str(host))
    inside = tmp_path / "inside.sh"
    inside.write_text("#!/bin/sh\n" + inside_script())
    # SC2016: the script handed to the proxy is single-quoted on purpose.
    host_check = subprocess.run(
        [shellcheck, "-e", "SC2016", *hosts], capture_output=True, text=True
    )
    assert host_check.returncode == 0, host_check.stdout
    inside_check = subprocess.run(
        [shellcheck, "-s", "dash", str(inside)], capture_output=True, text=True
    )
    assert inside_check.returncode == 0, inside_check.stdout
