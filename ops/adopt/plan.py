"""The offline plan (``scripts/plan --json``) as the adoption reads it.

Every resource has its engine-form ``urn``, ``type``, ``name``, ``parent`` (the
root stack is left out of the plan), ``custom``, ``provider`` (``URN::ID``) and
``options`` (dependencies, property dependencies, deletedWith). From it come the
names the stack declares and the targets of the ``up`` that runs before the
outage (``prepare``).

Target rules (pulumi pkg/resource/deploy/step_generator.go): providers and the root
stack are targeted implicitly; any resource that is created in a targeted ``up``
and has a dependency (its parent, ``dependsOn``, a property dependency, its
provider) on a resource that is neither targeted nor already in the state stops
the run with "untargeted create". On the first ``up`` nothing is in the state, so
the targets, their ancestors and the providers must not reach anything else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.adopt.shell import Failed, Refused, name
from ops.outputs import ROOT, user_path
from ops.rollout import stable_name

FORMAT = 1
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
DATABASE = "postgresql:index/database:Database"
ROLE = "postgresql:index/role:Role"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
LOCAL_COMMAND = "command:local:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"
ADMIN_PASSWORD = "shared-postgres-admin-password"
PROVIDER_PREFIX = "pulumi:providers:"
COMPONENT_KEYS = {
    "hemma:proxy:ProxyStack": {
        "certs": "proxy.certsVolume",
        "html": "proxy.htmlVolume",
        "acme": "proxy.acmeVolume",
    },
    "hemma:database:SharedPostgres": {"data": "postgres.dataVolume"},
}
"""The config key that names each platform volume, by its component and suffix."""
APP = "hemma:app:App"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    custom: bool
    parent: str
    provider: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(PROVIDER_PREFIX)


@dataclass(frozen=True)
class Volume:
    resource: str
    docker_name: str
    config_key: str
    """``postgres.dataVolume``, ``proxy.certsVolume`` or ``volumeNames["LOGICAL"]``."""


@dataclass(frozen=True)
class Container:
    name: str
    mounts: tuple[tuple[str, str], ...]
    """(volume name, container path) of each named volume it mounts."""
    binds: tuple[tuple[str, str], ...] = ()
    """(host path, container path) of each host path it mounts."""
    image: str = ""
    """The image reference it runs (``apache/kafka:3.8.1``), or its ID when unknown."""
    ports: tuple[tuple[str, int], ...] = ()
    """(host address, host port) of each port it publishes."""
    aliases: tuple[str, ...] = ()
    """Its network aliases (the service name a compose project would give it)."""
    files: tuple[str, ...] = ()
    """The paths of the files the provider uploads into it."""

    @property
    def destinations(self) -> set[str]:
        return {path for _, path in (*self.mounts, *self.binds)}


def _resource(raw: dict[str, Any]) -> Resource:
    options = raw.get("options") or {}
    deps = [*options.get("dependencies", [])]
    for values in (options.get("propertyDependencies") or {}).values():
        deps += values
    if options.get("deletedWith"):
        deps.append(options["deletedWith"])
    provider = str(raw.get("provider") or "")
    if provider:
        deps.append(provider.rsplit("::", 1)[0])
    if raw.get("parent"):
        deps.append(str(raw["parent"]))
    return Resource(
        type=str(raw["type"]),
        name=str(raw["name"]),
        urn=str(raw["urn"]),
        custom=bool(raw.get("custom")),
        parent=str(raw.get("parent") or ""),
        provider=provider,
        dependencies=tuple(dict.fromkeys(d for d in deps if d)),
        inputs=dict(raw.get("inputs") or {}),
        property_dependencies={
            str(k): tuple(str(u) for u in v)
            for k, v in (options.get("propertyDependencies") or {}).items()
        },
    )


def _config_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class Plan:
    def __init__(self, data: dict[str, Any], source: str) -> None:
        if data.get("format") != FORMAT or not isinstance(data.get("resources"), list):
            raise Refused(f"{source} is not a plan of format {FORMAT} (scripts/plan --json)")
        self.source = source
        self.resources = {r.urn: r for r in map(_resource, data["resources"])}
        self.config = {k: _config_value(v) for k, v in (data.get("config") or {}).items()}
        outputs = data.get("outputs")
        self.outputs: dict[str, Any] = outputs if isinstance(outputs, dict) else {}
        self._check_names()

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == type_]

    def _check_names(self) -> None:
        for kind, type_ in (("container", CONTAINER), ("volume", VOLUME), ("network", NETWORK)):
            for r in self.of_type(type_):
                name(r.inputs.get("name"), f"{kind} name in {self.source}")
        for r in self.of_type(DATABASE):
            name(r.inputs.get("name"), f"database name in {self.source}")
            name(r.inputs.get("owner"), f"database owner in {self.source}")
        for r in self.of_type(ROLE):
            name(r.inputs.get("name"), f"role name in {self.source}")
        name(self.postgres_container, "postgres.containerName")

    def _section(self, key: str) -> dict[str, Any]:
        value = self.config.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def postgres_container(self) -> str:
        return str(self._section("postgres").get("containerName", "shared-postgres"))

    @property
    def postgres_image(self) -> str:
        return str(self._section("postgres").get("image", "postgres:16-alpine"))

    @property
    def imports(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._section("import").items()}

    @property
    def volume_names(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._section("volumeNames").items()}

    def containers(self) -> list[Container]:
        found = []
        for r in self.of_type(CONTAINER):
            volumes = [v for v in r.inputs.get("volumes") or [] if isinstance(v, dict)]
            mounts = tuple(
                (str(v["volumeName"]), str(v["containerPath"]))
                for v in volumes
                if v.get("volumeName") and not v.get("hostPath")
            )
            binds = tuple(
                (str(v["hostPath"]), str(v["containerPath"])) for v in volumes if v.get("hostPath")
            )
            ports = tuple(
                (str(p.get("ip", "0.0.0.0")), int(p["external"]))
                for p in r.inputs.get("ports") or []
                if isinstance(p, dict) and p.get("external")
            )
            aliases = tuple(
                str(a)
                for n in r.inputs.get("networksAdvanced") or []
                if isinstance(n, dict)
                for a in n.get("aliases") or []
            )
            files = tuple(
                str(u["file"]) for u in r.inputs.get("uploads") or [] if isinstance(u, dict)
            )
            labels = {
                str(label.get("label")): str(label.get("value"))
                for label in r.inputs.get("labels") or []
                if isinstance(label, dict)
            }
            # A start-first container is matched by its service's name, which the
            # hand-made one carries; its own name has a digest.
            service = stable_name(str(r.inputs["name"]), labels)
            found.append(
                Container(service, mounts, binds, self._image_of(r), ports, aliases, files)
            )
        return found

    def _image_of(self, container: Resource) -> str:
        """The reference a container's image input stands for: a pulled image's ID
        comes from its RemoteImage, whose name is the reference."""
        image = str(container.inputs.get("image") or "")
        if not image.startswith("sha256:"):
            return image
        for urn in container.property_dependencies.get("image", ()):
            source = self.resources.get(urn)
            if source is not None and source.type == REMOTE_IMAGE:
                return str(source.inputs.get("name") or image)
        return image

    def data_volumes(self) -> set[str]:
        """The declared volumes that hold data, by Docker name: what the backups take
        (a cache is not), and shared-postgres's data, which they take as dumps. With
        the backups off, every volume."""
        names = {v.docker_name for v in self.volumes()}
        backups = self.outputs.get("backups")
        if not isinstance(backups, dict) or not backups.get("enabled"):
            return names
        taken = set(backups.get("volumes") or {})
        postgres = str(self._section("postgres").get("dataVolume", "shared-postgres-data"))
        return {n for n in names if n in taken or n == postgres}

    @property
    def adopt_as_is(self) -> set[str]:
        """Volumes the operator takes as they are (``adoptAsIs``): empty on purpose, or
        filled by hand."""
        value = self.config.get("adoptAsIs")
        return {str(v) for v in value} if isinstance(value, list) else set()

    def volumes(self) -> list[Volume]:
        found = []
        for r in self.of_type(VOLUME):
            docker_name = str(r.inputs["name"])
            parent = self.resources.get(r.parent)
            key = ""
            if parent is not None and parent.type in COMPONENT_KEYS:
                suffix = r.name.removeprefix(f"{parent.name}-")
                key = COMPONENT_KEYS[parent.type].get(suffix, "")
            elif parent is not None and parent.type == APP:
                logical = r.name.removeprefix(f"{parent.name}-")
                key = f'volumeNames["{logical}"]'
            found.append(Volume(r.name, docker_name, key))
        return found

    def networks(self) -> list[str]:
        return [str(r.inputs["name"]) for r in self.of_type(NETWORK)]

    def databases(self) -> dict[str, str]:
        """Declared database -> the role that owns it."""
        return {str(r.inputs["name"]): str(r.inputs["owner"]) for r in self.of_type(DATABASE)}

    def roles(self) -> list[str]:
        return [str(r.inputs["name"]) for r in self.of_type(ROLE)]


def read_plan(path: str | None) -> Plan:
    """The plan in ``path``, or a fresh one from ``scripts/plan`` (offline)."""
    if path is not None:
        file = user_path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise Refused(f"cannot read {path}: {error.strerror or error}") from None
        return _parse(text, path)
    with tempfile.TemporaryDirectory(prefix="hemma-adopt-") as tmp:
        out = Path(tmp) / "plan.json"
        argv = [str(ROOT / "scripts" / "plan"), "--quiet", "--json", str(out)]
        if os.environ.get("HEMMA_STACK"):
            argv += ["--stack", os.environ["HEMMA_STACK"]]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise Failed(f"scripts/plan failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return _parse(out.read_text(encoding="utf-8"), "scripts/plan")


def _parse(text: str, source: str) -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise Refused(f"{source} is not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(data, dict):
        raise Refused(f"{source} is not a plan (scripts/plan --json)")
    return Plan(data, source)


# --- the targeted up before the outage ---------------------------------------


def is_image(r: Resource) -> bool:
    if r.type == REMOTE_IMAGE:
        return True
    return r.type == LOCAL_COMMAND and (r.name.endswith("-image") or "-extra-image-" in r.name)


def prepare_targets(plan: Plan) -> list[Resource]:
    """Every image, the admin password, and each one's ancestors, in plan order."""
    chosen = {r.urn for r in plan.resources.values() if is_image(r)}
    admin = [r for r in plan.of_type(PASSWORD) if r.name == ADMIN_PASSWORD]
    if len(admin) != 1:
        raise Refused(f"{plan.source} declares {len(admin)} {ADMIN_PASSWORD} resources, not 1")
    chosen.add(admin[0].urn)
    for urn in list(chosen):
        parent = plan.resources[urn].parent
        while parent in plan.resources:
            ancestor = plan.resources[parent]
            if ancestor.custom and ancestor.urn not in chosen:
                raise Refused(
                    f"{plan.resources[urn].name} is a child of {ancestor.name} ({ancestor.type}): "
                    "targeting it would create that resource before the outage"
                )
            chosen.add(parent)
            parent = ancestor.parent
    return [r for r in plan.resources.values() if r.urn in chosen]


def untargeted_creates(plan: Plan, targets: Iterable[Resource]) -> list[tuple[Resource, Resource]]:
    """(resource, dependency) pairs that would stop a first targeted up."""
    chosen = {r.urn for r in targets}
    created = [r for r in plan.resources.values() if r.urn in chosen or r.is_provider]
    gaps = []
    for resource in created:
        for dep in resource.dependencies:
            other = plan.resources.get(dep)
            if other is not None and other.urn not in chosen and not other.is_provider:
                gaps.append((resource, other))
    return gaps


def up_command(pulumi: list[str], targets: Iterable[Resource]) -> list[str]:
    argv = [*pulumi, "up"]
    for r in targets:
        argv += ["--target", r.urn]
    return argv


_GLOB = re.compile(r"[*?]")


def check_urns(targets: Iterable[Resource]) -> None:
    """``--target`` takes globs; a URN with ``*`` would target more than itself."""
    for r in targets:
        if _GLOB.search(r.urn):
            raise Refused(f"refusing target {r.urn!r}: it would be read as a glob")
