"""The drift check: what a hand on Hemma changed where ``pulumi refresh`` does not look.

``hemma-drift-check`` (``files/hemma-drift-check.sh``), run by its timer
(``drift.schedule``), compares three things with what the program declares and
writes Prometheus textfile metrics (``hemma_drift_host.prom``) beside the other
host jobs':

- every file the unit groups install (units, timers, scripts, the jobs' other
  files), against the sha256 of each in a manifest the job installs
  (``/etc/hemma/drift/files``);
- the privilege model on shared-postgres (``components/postgres/database.py``):
  each app role's attributes, the databases it owns, their privileges (PUBLIC's
  CONNECT revoked), and nothing granted beyond that, against
  ``/etc/hemma/drift/grants``;
- the containers on the engine, against ``/etc/hemma/drift/containers``: the
  declared names, the start-first services (whose copies carry a random suffix
  and the service's label) and the images a service starts containers of itself.

Each expected file is a pure function of config, so a steady ``up`` rewrites none.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from importlib import resources

from components.backups.restic import LIB
from components.config.stack import StackConfig
from components.host.unit_files import UnitGroup, job_group
from components.model.app import App, Build
from components.model.host import HostFile, Job
from components.model.rollout import SERVICE_LABEL

DRIFT_JOB = "hemma-drift-check"
DRIFT_SCRIPT = f"{LIB}/{DRIFT_JOB}.sh"
DRIFT_DIR = "/etc/hemma/drift"
MANIFEST = f"{DRIFT_DIR}/files"
"""``SHA256  PATH`` per installed file, as ``sha256sum`` writes them."""
GRANTS = f"{DRIFT_DIR}/grants"
CONTAINERS = f"{DRIFT_DIR}/containers"

ADMIN_ROLE = "postgres"
"""shared-postgres's one superuser (``components/postgres/server.py``)."""
ROLE_ATTRIBUTES = "LOGIN,NOSUPERUSER,NOCREATEDB,NOCREATEROLE,NOREPLICATION,NOBYPASSRLS"
"""What ``AppDatabase`` declares of each app role, in the order the check prints it."""
OWNER_PRIVILEGES = ("CONNECT", "CREATE", "TEMPORARY")
"""A database's privileges once PUBLIC's are revoked: its owner's, and no one else's."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What the script takes as a database, role or container name (its NAME_RE)."""


def script_text() -> str:
    return resources.files("components.host").joinpath("files", f"{DRIFT_JOB}.sh").read_text()


def field(value: str) -> str:
    """One field of a grant line, escaped as the check's SQL escapes it."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")


def grant_line(*fields: str) -> str:
    return "|".join(field(f) for f in fields)


def expected_grants(owners: Mapping[str, Sequence[str]]) -> str:
    """The lines the check reads off shared-postgres when it holds the declared model:
    ``owners`` maps each app role to the databases it owns. Sorted as ``LC_ALL=C sort``."""
    lines = {grant_line("superuser", ADMIN_ROLE)}
    for role, databases in owners.items():
        lines.add(grant_line("role", role, ROLE_ATTRIBUTES))
        for database in databases:
            lines.add(grant_line("owner", database, role))
            lines |= {grant_line(database, "database", role, p) for p in OWNER_PRIVILEGES}
    return "".join(f"{line}\n" for line in sorted(lines, key=lambda line: line.encode()))


def manifest_line(path: str, content: str) -> str:
    """``SHA256  PATH`` as ``sha256sum`` writes it: a path holding a backslash or a line
    end is escaped, and its line starts with a backslash."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    mark = "\\" if escaped != path else ""
    return f"{mark}{digest}  {escaped}\n"


def manifest(files: Iterable[HostFile]) -> str:
    """Every installed file's sha256, by path. The root-only secret env files (a
    group's ``secret_file``, such as restic.env) are no ``HostFile``: their content
    reaches Hemma on a command's stdin and the program keeps no plain copy to hash."""
    by_path: dict[str, str] = {}
    for f in files:
        if f.path == MANIFEST:
            raise ValueError(f"{MANIFEST} cannot hold its own sha256")
        if by_path.setdefault(f.path, f.content) != f.content:
            raise ValueError(f"two unit groups install {f.path} with different content")
    return "".join(manifest_line(path, content) for path, content in sorted(by_path.items()))


def database_owners(apps: Iterable[App]) -> dict[str, list[str]]:
    """App role -> the databases it owns, for every app whose data is declared."""
    owners: dict[str, list[str]] = {}
    for app in apps:
        if app.database_role:
            owners.setdefault(app.database_role, []).extend(app.databases)
    return owners


def expected_containers(config: StackConfig, catalog: Sequence[App]) -> str:
    """``name NAME`` (a fixed name), ``service NAME`` (start-first: ``NAME-<12 hex>``
    labelled with NAME) and ``image REF`` (what a service starts itself, such as
    Skriptoteket's runners, by the reference it starts them with)."""
    lines = {
        f"name {config.proxy.container_name}",
        f"name {config.proxy.companion_container_name}",
        f"name {config.postgres.container_name}",
    }
    for app in catalog:
        for service in app.services:
            kind = "service" if service.rollout == "start-first" else "name"
            lines.add(f"{kind} {service.container}")
            for image in service.extra_images:
                lines.add(f"image {image.stable_tag if isinstance(image, Build) else image.ref}")
    return "".join(f"{line}\n" for line in sorted(lines))


def _name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad {what} name for the drift check: {name!r}")
    return name


def drift_argv(
    docker: str,
    postgres: str,
    metrics: str,
    databases: Sequence[str],
    roles: Sequence[str],
    *,
    script: str = DRIFT_SCRIPT,
    manifest_file: str = MANIFEST,
    grants: str = GRANTS,
    containers: str = CONTAINERS,
) -> list[str]:
    argv = [script, "--docker", docker, "--postgres", _name("container", postgres)]
    argv += ["--metrics", metrics, "--manifest", manifest_file, "--grants", grants]
    argv += ["--containers", containers, "--service-label", SERVICE_LABEL]
    argv += [word for db in databases for word in ("--database", _name("database", db))]
    return argv + [word for role in roles for word in ("--role", _name("role", role))]


def drift_group(
    config: StackConfig, catalog: Sequence[App], groups: Sequence[UnitGroup]
) -> UnitGroup:
    """The drift check's units and files; its manifest covers every file of ``groups``
    and its own, but itself."""
    owners = database_owners((*catalog, *config.retired_apps()))
    databases = [database for listed in owners.values() for database in listed]
    argv = drift_argv(
        config.docker_path,
        config.postgres.container_name,
        config.backups.metrics_directory,
        databases,
        list(owners),
    )
    job = Job(
        name=DRIFT_JOB,
        description="Look for files, grants and containers changed by hand on Hemma",
        what="the drift check",
        exec_start=(tuple(argv),),
        schedule=config.drift.schedule,
        requires=(config.docker_service,),
        extra_files=(
            HostFile(DRIFT_SCRIPT, script_text(), mode="0755"),
            HostFile(GRANTS, expected_grants(owners)),
            HostFile(CONTAINERS, expected_containers(config, catalog)),
        ),
    )
    own = job_group(job).files
    listed = manifest([*(f for group in groups for f in group.files), *own])
    return job_group(replace(job, extra_files=(*job.extra_files, HostFile(MANIFEST, listed))))


def manifest_holds_secret(groups: Sequence[UnitGroup], secret_values: Iterable[str]) -> bool:
    """Whether a file the manifest hashes holds a secret value: its sha256 would let
    anyone with the state test guesses of it, so the drift group's install is secret."""
    secrets = [value for value in secret_values if value]
    return any(s in f.content for group in groups for f in group.files for s in secrets)
