"""The guardrails, as pure functions of what the engine shows the pack.

Each takes a resource's type, its input properties (camelCase, as the engine
has them, secrets as plain values) and the options the pack sees, and returns
the violations as sentences; the stack-wide ones take every resource. They
import nothing of the program, so the pack checks what is declared, not what
the program meant to declare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DATABASE = "postgresql:index/database:Database"
ROLE = "postgresql:index/role:Role"
PROXY_LABEL = "com.github.nginx-proxy.nginx"
SERVICE_LABEL = "education.hule.hemma.service"
"""A start-first container's stable name; its own is that name, ``-`` and 12 hex digits."""
DOCKER_SOCKET = "/var/run/docker.sock"
LOOPBACK = ("127.0.0.1", "::1")
PUBLIC_PORTS = (80, 443)
RESTART_POLICIES = ("always", "unless-stopped", "on-failure")
MIN_GRACE_FOR_DATA = 30

SOCKET_USERS: Mapping[str, bool] = {
    "nginx-proxy": False,
    "acme-companion": False,
    "promtail": False,
    "skriptoteket-web": True,
}
"""Container -> whether it may write to the Docker socket (it starts containers)."""

_CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|ACCESS_KEY")
_PLACEHOLDERS = frozenset(
    {"admin", "changeme", "change_me", "password", "postgres", "secret", "test", "example"}
)


@dataclass(frozen=True)
class Resource:
    """A resource as the pack sees it."""

    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False


def _env(props: Mapping[str, Any]) -> dict[str, str]:
    entries = props.get("envs") or []
    return dict(str(e).split("=", 1) for e in entries if "=" in str(e))


def _labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {str(label["label"]): str(label["value"]) for label in props.get("labels") or []}


def _service(props: Mapping[str, Any]) -> str:
    """The container's stable name: a start-first container's label, which counts only
    when its own name is that label and a digest (a label alone grants nothing)."""
    name = str(props.get("name"))
    label = _labels(props).get(SERVICE_LABEL)
    if label is not None and re.fullmatch(rf"{re.escape(label)}-[0-9a-f]{{12}}", name):
        return label
    return name


def start_first_holds_no_host_port(resource: Resource) -> list[str]:
    """Two copies of a start-first container run during its deploy: a host port can be
    held by one only ("port is already allocated")."""
    if resource.type != CONTAINER or _service(resource.props) == resource.props.get("name"):
        return []
    return [
        f"{resource.props.get('name')} is start-first but publishes host port "
        f"{port.get('external') or port.get('internal')}"
        for port in resource.props.get("ports") or []
    ]


def _networks(props: Mapping[str, Any]) -> set[str]:
    return {str(n["name"]) for n in props.get("networksAdvanced") or []}


def _is_proxy(props: Mapping[str, Any]) -> bool:
    return _labels(props).get(PROXY_LABEL) == "true"


def routed_containers_reach_the_proxy(resources: Sequence[Resource]) -> list[str]:
    """A container with VIRTUAL_HOST shares a network with nginx-proxy (or answers 502),
    and, where acme-companion runs, sets LETSENCRYPT_HOST to the same hosts (or gets no
    certificate). A stack without acme-companion (the local one) serves plain HTTP."""
    containers = [r for r in resources if r.type == CONTAINER]
    proxies = [r for r in containers if _is_proxy(r.props)]
    # acme-companion is the container told which nginx-proxy to reload.
    acme = any("NGINX_PROXY_CONTAINER" in _env(r.props) for r in containers)
    if not proxies:
        return ["no nginx-proxy container (labelled com.github.nginx-proxy.nginx)"]
    proxy_networks = set().union(*(_networks(p.props) for p in proxies))
    problems = []
    for container in containers:
        env = _env(container.props)
        if "VIRTUAL_HOST" not in env:
            continue
        name = container.props.get("name", container.name)
        if not _networks(container.props) & proxy_networks:
            problems.append(f"{name} is routed but shares no network with nginx-proxy")
        if acme and env.get("LETSENCRYPT_HOST") != env["VIRTUAL_HOST"]:
            problems.append(f"{name}: LETSENCRYPT_HOST differs from VIRTUAL_HOST")
    return problems


def no_public_ports(resource: Resource) -> list[str]:
    """Only nginx-proxy's 80 and 443 listen on a public address."""
    if resource.type != CONTAINER:
        return []
    problems = []
    for port in resource.props.get("ports") or []:
        address = port.get("ip") or "0.0.0.0"
        external = int(port.get("external") or port.get("internal") or 0)
        if address in LOOPBACK:
            continue
        if _is_proxy(resource.props) and external in PUBLIC_PORTS:
            continue
        problems.append(f"{resource.props.get('name')} publishes {external} on {address}")
    return problems


def docker_socket_only_where_needed(resource: Resource) -> list[str]:
    """The Docker socket is root on the host: mounted only into the containers that read
    it, and read-only unless the container starts containers."""
    if resource.type != CONTAINER:
        return []
    name = _service(resource.props)
    problems = []
    for volume in resource.props.get("volumes") or []:
        if volume.get("hostPath") != DOCKER_SOCKET:
            continue
        if name not in SOCKET_USERS:
            problems.append(f"{name} mounts the Docker socket and has no need of it")
        elif not SOCKET_USERS[name] and not volume.get("readOnly"):
            problems.append(f"{name} mounts the Docker socket writable; read-only is enough")
    return problems


def restart_and_health_check(resource: Resource) -> list[str]:
    """Every container restarts after a crash or a daemon restart, and has a health check."""
    if resource.type != CONTAINER:
        return []
    name = resource.props.get("name")
    problems = []
    if resource.props.get("restart") not in RESTART_POLICIES:
        problems.append(f"{name} has no restart policy (restart={resource.props.get('restart')})")
    tests = (resource.props.get("healthcheck") or {}).get("tests") or []
    if not [t for t in tests if t not in ("NONE",)] or tests[:1] == ["NONE"]:
        problems.append(f"{name} has no health check")
    return problems


def images_are_pinned(resource: Resource) -> list[str]:
    """Advisory: a pulled image names a tag other than latest, or a digest."""
    if resource.type != REMOTE_IMAGE:
        return []
    reference = str(resource.props.get("name", ""))
    last = reference.rsplit("/", 1)[-1]
    if "@sha256:" in reference:
        return []
    if ":" not in last or last.endswith(":latest"):
        return [f"{reference} is not pinned to a tag or digest"]
    return []


def data_is_protected(resource: Resource) -> list[str]:
    """No up or destroy deletes a data volume or a database."""
    if resource.type in (VOLUME, DATABASE) and not resource.protect:
        return [f"{resource.props.get('name', resource.name)} is not protected from deletion"]
    return []


def no_superuser_role(resource: Resource) -> list[str]:
    """An app's login role is never a superuser."""
    if resource.type == ROLE and resource.props.get("superuser"):
        return [f"role {resource.props.get('name')} is a superuser"]
    return []


def no_plaintext_credentials(resource: Resource) -> list[str]:
    """Advisory: a credential-named env value that is short or a well-known placeholder
    was typed in, not generated."""
    if resource.type != CONTAINER:
        return []
    problems = []
    for key, value in _env(resource.props).items():
        # An empty one is not typed in but missing: the config check requires it where
        # it must be set (the local stack runs without it).
        if not _CREDENTIAL_NAME.search(key) or value == "":
            continue
        if len(value) < 16 or value.lower() in _PLACEHOLDERS:
            problems.append(f"{resource.props.get('name')}: {key} looks like a typed-in credential")
    return problems


def data_containers_stop_gracefully(resource: Resource) -> list[str]:
    """A container with a data volume gets time to stop before SIGKILL: from the
    provider when it removes the container (``destroyGraceSeconds``, 0 when unset), and
    from the daemon when it stops its containers itself (``stopTimeout``, 10 s when
    unset: a snap refresh, ``snap disable``)."""
    if resource.type != CONTAINER:
        return []
    if not any(v.get("volumeName") for v in resource.props.get("volumes") or []):
        return []
    name = resource.props.get("name")
    found = []
    for key, what, unset in (
        ("destroyGraceSeconds", "when removed", 0),
        ("stopTimeout", "when the daemon stops it", 10),
    ):
        value = resource.props.get(key)
        grace = unset if value is None else int(value)
        if grace < MIN_GRACE_FOR_DATA:
            found.append(f"{name} holds data and gets {grace} s to stop {what}")
    return found


RESOURCE_POLICIES = {
    "no-public-ports": (no_public_ports, "mandatory"),
    "docker-socket-only-where-needed": (docker_socket_only_where_needed, "mandatory"),
    "restart-and-health-check": (restart_and_health_check, "mandatory"),
    "images-are-pinned": (images_are_pinned, "advisory"),
    "data-is-protected": (data_is_protected, "mandatory"),
    "no-superuser-role": (no_superuser_role, "mandatory"),
    "no-plaintext-credentials": (no_plaintext_credentials, "advisory"),
    "data-containers-stop-gracefully": (data_containers_stop_gracefully, "mandatory"),
    "start-first-holds-no-host-port": (start_first_holds_no_host_port, "mandatory"),
}
STACK_POLICIES = {
    "routed-containers-reach-the-proxy": (routed_containers_reach_the_proxy, "mandatory"),
}


def violations(resources: Iterable[Resource]) -> dict[str, list[str]]:
    """Every policy over every resource: policy name -> its violations."""
    listed = list(resources)
    found: dict[str, list[str]] = {}
    for name, (check, _) in RESOURCE_POLICIES.items():
        found[name] = [v for r in listed for v in check(r)]
    for name, (stack_check, _) in STACK_POLICIES.items():
        found[name] = stack_check(listed)
    return {name: problems for name, problems in found.items() if problems}
