"""What Hemma runs now, read over ssh without changing anything.

Containers, volumes and networks come from ``docker inspect`` with a format that
leaves out each container's env (it holds passwords); the databases and roles
from the catalog of shared-postgres, over ``docker exec psql`` with the query on
stdin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ops.adopt.shell import Failed, Hemma, name, quote_literal, sh
from ops.rollout import stable_name

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
COMPOSE_VOLUME = "com.docker.compose.volume"
SUFFIX = "-pre-hemma"

CONTAINER_FORMAT = (
    '{"name":{{json .Name}},"id":{{json .Id}},"image":{{json .Config.Image}},'
    '"state":{{json .State.Status}},"running":{{json .State.Running}},'
    '"restart":{{json .HostConfig.RestartPolicy}},"labels":{{json .Config.Labels}},'
    '"mounts":{{json .Mounts}},"ports":{{json .HostConfig.PortBindings}}}'
)
VOLUME_FORMAT = '{"name":{{json .Name}},"labels":{{json .Labels}}}'
NETWORK_FORMAT = '{"name":{{json .Name}},"id":{{json .Id}},"labels":{{json .Labels}}}'
_SCRIPT = r"""d=$1
echo '#containers'
ids=$("$d" ps -aq --no-trunc)
[ -z "$ids" ] || "$d" container inspect --format "$2" $ids
echo '#volumes'
vols=$("$d" volume ls -q)
[ -z "$vols" ] || "$d" volume inspect --format "$3" $vols
echo '#networks'
nets=$("$d" network ls -q --no-trunc)
[ -z "$nets" ] || "$d" network inspect --format "$4" $nets
"""
CATALOG_SQL = """SELECT json_build_object(
  'version', current_setting('server_version_num'),
  'databases', (SELECT coalesce(json_agg(json_build_object(
      'name', datname, 'owner', pg_get_userbyid(datdba)) ORDER BY datname), '[]')
    FROM pg_database WHERE NOT datistemplate),
  'roles', (SELECT coalesce(json_agg(json_build_object(
      'name', rolname, 'superuser', rolsuper, 'login', rolcanlogin) ORDER BY rolname), '[]')
    FROM pg_roles WHERE rolname !~ '^pg_'));
"""


@dataclass(frozen=True)
class Mount:
    type: str
    name: str
    source: str
    destination: str


@dataclass(frozen=True)
class Running:
    """One container on Hemma."""

    name: str
    id: str
    image: str
    state: str
    running: bool
    restart: str
    """``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]`` (``--restart``)."""
    labels: dict[str, str]
    mounts: tuple[Mount, ...]
    ports: tuple[tuple[str, int], ...] = ()
    """(host address, host port) it publishes, as configured (also when stopped); an
    empty address is every address."""

    @property
    def project(self) -> str:
        return self.labels.get(PROJECT, "")

    @property
    def service(self) -> str:
        """The compose service it runs, when compose made it."""
        return self.labels.get(SERVICE, "")

    @property
    def declared_as(self) -> str:
        """The name the stack declares it by: a start-first container's service."""
        return stable_name(self.name, self.labels)


@dataclass(frozen=True)
class Named:
    name: str
    id: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Catalog:
    version: int
    databases: dict[str, str]
    """Database -> its owner."""
    roles: dict[str, bool]
    """Role -> whether it is a superuser."""


@dataclass
class Observed:
    containers: list[Running] = field(default_factory=list)
    volumes: list[Named] = field(default_factory=list)
    networks: list[Named] = field(default_factory=list)
    catalog: Catalog | None = None
    catalog_problem: str = ""

    def container(self, container_name: str) -> Running | None:
        return next((c for c in self.containers if c.name == container_name), None)


def restart_policy(raw: Any) -> str:
    """Docker's ``{"Name": ..., "MaximumRetryCount": N}`` as ``--restart`` takes it."""
    policy = raw if isinstance(raw, dict) else {}
    kind = str(policy.get("Name") or "no")
    count = int(policy.get("MaximumRetryCount") or 0)
    return f"{kind}:{count}" if kind == "on-failure" and count else kind


def running(raw: dict[str, Any]) -> Running:
    return Running(
        name=str(raw["name"]).lstrip("/"),
        id=str(raw["id"]),
        image=str(raw.get("image") or ""),
        state=str(raw.get("state") or ""),
        running=bool(raw.get("running")),
        restart=restart_policy(raw.get("restart")),
        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
        mounts=tuple(
            Mount(
                str(m.get("Type", "")),
                str(m.get("Name", "")),
                str(m.get("Source", "")),
                str(m.get("Destination", "")),
            )
            for m in raw.get("mounts") or []
        ),
        ports=tuple(
            (str(b.get("HostIp") or ""), int(b["HostPort"]))
            for bindings in (raw.get("ports") or {}).values()
            for b in bindings or []
            if str(b.get("HostPort") or "").isdigit()
        ),
    )


def _named(raw: dict[str, Any]) -> Named:
    labels = raw.get("labels") or {}
    return Named(str(raw["name"]), str(raw.get("id") or raw["name"]), dict(labels))


def parse_docker(text: str) -> Observed:
    observed = Observed()
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line[1:].strip()
            continue
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            raise Failed(
                f"docker inspect printed something that is not JSON: {line[:80]}"
            ) from None
        if section == "containers":
            observed.containers.append(running(raw))
        elif section == "volumes":
            observed.volumes.append(_named(raw))
        elif section == "networks":
            observed.networks.append(_named(raw))
    return observed


def parse_catalog(text: str) -> Catalog:
    data = json.loads(text.strip())
    return Catalog(
        version=int(data["version"]),
        databases={str(d["name"]): str(d["owner"]) for d in data["databases"]},
        roles={str(r["name"]): bool(r["superuser"]) for r in data["roles"]},
    )


def observe(hemma: Hemma, postgres: str) -> Observed:
    text = hemma.must(
        sh(_SCRIPT, hemma.docker, CONTAINER_FORMAT, VOLUME_FORMAT, NETWORK_FORMAT), timeout=120
    )
    observed = parse_docker(text)
    server = observed.container(postgres)
    if server is None or not server.running:
        observed.catalog_problem = f"{postgres} is not running: its databases were not read"
        return observed
    observed.catalog = parse_catalog(hemma.sql(postgres, CATALOG_SQL))
    return observed


def containers_by_id(hemma: Hemma, ids: list[str]) -> dict[str, Running]:
    """The containers with these IDs that still exist (by ID), read in one call."""
    if not ids:
        return {}
    line = sh(
        'd=$1; f=$2; shift 2; for id in "$@"; do "$d" container inspect --format "$f" "$id" '
        "2>/dev/null || true; done",
        hemma.docker,
        CONTAINER_FORMAT,
        *(name(i, "container id") for i in ids),
    )
    found = {}
    for line_text in hemma.must(line).splitlines():
        if line_text.strip():
            got = running(json.loads(line_text))
            found[got.id] = got
    return found


def container_envs(hemma: Hemma, ids: list[str]) -> dict[str, list[str]]:
    """Each container's env, by ID, in one call (passwords: never printed)."""
    if not ids:
        return {}
    line = sh(
        'd=$1; shift; for id in "$@"; do '
        '"$d" container inspect --format "[{{json .Id}},{{json .Config.Env}}]" "$id"; done',
        hemma.docker,
        *(name(i, "container id") for i in ids),
    )
    found = {}
    for text in hemma.must(line).splitlines():
        if text.strip():
            container_id, env = json.loads(text)
            found[str(container_id)] = [str(e) for e in env or []]
    return found


def stored_verifiers(hemma: Hemma, postgres: str, roles: list[str]) -> dict[str, str]:
    """``pg_authid.rolpassword`` of each role that exists (empty: it has none)."""
    wanted = ", ".join(quote_literal(r) for r in roles) or "NULL"
    sql = (
        "SELECT coalesce(json_object_agg(rolname, coalesce(rolpassword, '')), '{}') "
        f"FROM pg_authid WHERE rolname IN ({wanted});\n"
    )
    data = json.loads(hemma.sql(postgres, sql).strip() or "{}")
    return {str(k): str(v) for k, v in data.items()}


def stored_verifier(hemma: Hemma, postgres: str, role: str) -> str:
    return stored_verifiers(hemma, postgres, [role]).get(role, "")
