"""One app, as containers on Hemma.

Every service comes out the same way: its image pulled or built, a container
replaced delete-first under a fixed name, or start-first under a name derived
from its inputs (``Service.rollout``), on its networks with its service name as
alias, routed through nginx-proxy when it has a route (on
hule-network, with ``VIRTUAL_HOST`` = ``LETSENCRYPT_HOST``), ports published on
127.0.0.1 only, a health check, a restart policy, rotated logs and a stop grace
period. Secret env values are secret Outputs from generation to the container.
A service's steps (a migration) run inside its new container before it must be
healthy, one after the other across the app.

A retired app (switched off, its data kept) declares its volumes and secrets
only: no containers, so nothing runs, and nothing protected is deleted.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.apps.images import app_image
from components.apps.where import Elsewhere, OnHost
from components.apps.wiring import (
    DatabaseLogin,
    database_secret,
    drain_for,
    route_env,
    service_health,
    step_script,
    volume_args,
)
from components.foundation.adoption import adopt
from components.foundation.containers import (
    ContainerDefaults,
    container,
    localhost_port,
    protected_volume,
)
from components.foundation.secrets import generated_password, secret_value
from components.foundation.shell import HostShell
from components.model.app import (
    HOST_GATEWAY,
    App,
    Build,
    Generated,
    Image,
    OperatorSecret,
    Pull,
    SecretSource,
    Service,
)


@dataclass(frozen=True)
class AppStackArgs:
    app: App
    networks: Mapping[str, docker.Network]
    """Docker name -> network, for every network the app's services join."""
    shell: HostShell
    """Where the steps run: SSH to Hemma, or this machine's Docker (the local stack)."""
    routed_after: pulumi.Resource | None
    """The proxy's reload step: a routed container starts only once its host's
    files (its htpasswd above all) are in place."""
    docker_host: str
    """Hemma's daemon as ``docker --host`` reaches it, for the builds."""
    hostnames: Mapping[str, str]
    """Route id -> public hostname."""
    database: DatabaseLogin | None = None
    source: str | None = None
    """The app's source checkout on the operator's machine, for images it builds."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """Repository -> digest of what its image is built from (``source_digest``)."""
    operator_secrets: Mapping[str, str | None] = field(default_factory=dict)
    """Operator-held secrets by config key."""
    image_overrides: Mapping[str, str] = field(default_factory=dict)
    retention: int = 3
    """Built images of each repository kept on Hemma (``remove_command``)."""
    extra_env: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    defaults: ContainerDefaults = field(default_factory=ContainerDefaults)
    import_ids: Mapping[str, str] = field(default_factory=dict)
    volume_names: Mapping[str, str] = field(default_factory=dict)
    """App volume -> its Docker name on Hemma, where it differs."""
    retired: bool = False
    """Declare the app's volumes and secrets only."""
    tls: bool = True
    """Routed containers ask acme-companion for a certificate (not the local stack)."""
    proxy_container: str = "nginx-proxy"
    """Whose rendered upstreams a start-first drain reads."""
    elsewhere: Mapping[str, Elsewhere] = field(default_factory=dict)
    """Container -> the machine it runs on, for each one not on Hemma."""


class AppStack(pulumi.ComponentResource):
    """The containers, volumes, images, secrets and steps of one app."""

    containers: dict[str, docker.Container]
    """By container name."""
    generated: dict[str, pulumi.Output[str]]
    """The app's generated secrets by name (secret Outputs)."""
    steps: dict[str, pulumi.CustomResource]
    """By ``container/step``: the commands run inside new containers (migrations)."""

    def __init__(
        self, name: str, args: AppStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:app:App", name, None, opts)
        app = args.app
        self._name = name
        self._app = app
        self._args = args
        self._database = args.database
        self.generated = {
            secret: secret_value(generated_password(f"{name}-{secret}", self))
            for secret in app.generated
        }
        self._on_host: dict[str, OnHost] = {}
        users = {v: s for s in reversed(app.services) for v in s.volumes}
        self._volumes = {
            volume: protected_volume(
                f"{name}-{volume}",
                docker_name := args.volume_names.get(volume, volume),
                self._parent(users[volume]),
                adopt(args.import_ids, "volume", docker_name),
            )
            for volume in sorted(users)
        }
        self._defaults = args.defaults
        if not args.retired and any(s.rollout == "start-first" for s in app.services):
            # Keys the names of the app's start-first containers (start_first_name).
            key = secret_value(generated_password(f"{name}-container-name-key", self))
            self._defaults = dataclasses.replace(args.defaults, name_key=key)
        self.containers = {}
        self.steps = {}
        self._last_step: pulumi.Resource | None = None
        if not args.retired:
            for service in app.services:
                self._declare(service)
        self.register_outputs({"containers": list(self.containers)})

    # --- where ------------------------------------------------------------------------

    def _parent(self, service: Service) -> pulumi.Resource:
        """The app itself on Hemma; on another machine, a child that carries its provider
        (one per machine), so nothing placed there can reach Hemma's Docker."""
        where = self._args.elsewhere.get(service.container)
        if where is None:
            return self
        if where.host not in self._on_host:
            self._on_host[where.host] = OnHost(f"{self._name}-on-{where.host}", where, self)
        return self._on_host[where.host]

    def _shell(self, service: Service) -> HostShell:
        where = self._args.elsewhere.get(service.container)
        return where.shell if where else self._args.shell

    # --- images and secrets -------------------------------------------------------

    def _service_image(self, service: Service) -> tuple[pulumi.Resource, pulumi.Input[str]]:
        override = self._args.image_overrides.get(service.container)
        spec: Image = Pull(override) if override else service.image
        return self._image(f"{self._name}-{service.name}-image", spec, service)

    def _image(
        self, resource_name: str, spec: Image, service: Service
    ) -> tuple[pulumi.Resource, pulumi.Input[str]]:
        args = self._args
        if isinstance(spec, Build) and args.source is None:
            raise ValueError(f"{self._app.name} builds images but has no source checkout")
        where = args.elsewhere.get(service.container)
        docker_host = where.docker_host if where else args.docker_host
        return app_image(
            resource_name,
            spec,
            self._parent(service),
            args.source,
            args.digests,
            docker_host,
            args.retention,
        )

    def _secret(self, source: SecretSource) -> pulumi.Output[str]:
        if isinstance(source, Generated):
            return self.generated[source.name]
        if isinstance(source, OperatorSecret):
            # Unset only on the local stack (the config check requires it elsewhere).
            return pulumi.Output.secret(self._args.operator_secrets.get(source.key) or "")
        if self._database is None:
            raise ValueError(f"{self._app.name} has no database for {source}")
        return database_secret(self._database, source)

    def _envs(self, service: Service) -> list[pulumi.Input[str]]:
        clear = {**service.env, **route_env(service, self._args.hostnames, self._args.tls)}
        envs: list[pulumi.Input[str]] = [f"{key}={value}" for key, value in sorted(clear.items())]
        for key, value in sorted(self._args.extra_env.get(service.container, {}).items()):
            envs.append(pulumi.Output.concat(key, "=", value))
        for key, source in sorted(service.secret_env.items()):
            envs.append(pulumi.Output.secret(pulumi.Output.concat(key, "=", self._secret(source))))
        return envs

    # --- the container --------------------------------------------------------------------

    def _declare(self, service: Service) -> None:
        name = f"{self._name}-{service.name}"
        # Images the service starts itself (Skriptoteket's runner) must be on Hemma first.
        extra_images = [
            self._image(f"{name}-extra-image-{index}", spec, service)[0]
            for index, spec in enumerate(service.extra_images)
        ]
        built, image_ref = self._service_image(service)
        assert service.healthcheck is not None, f"{service.container} has no health check"
        needs = [built, *extra_images, *([self._database.resource] if self._database else [])]
        if service.route and self._args.routed_after is not None:
            needs.append(self._args.routed_after)
        start_first = service.rollout == "start-first"
        # A start-first container's own name changes with each deploy: others reach it
        # by its service's stable name, an alias on every network (and find it by the
        # label container() gives it).
        aliases = [service.name, *([service.container] if start_first else [])]
        parent = self._parent(service)
        shell = self._shell(service)
        where = self._args.elsewhere.get(service.container)
        networks = where.networks if where else self._args.networks
        created = container(
            name,
            parent=parent,
            docker_name=service.container,
            start_first=start_first,
            image=image_ref,
            health=service_health(service),
            stop_grace_seconds=service.stop_grace_seconds,
            defaults=self._defaults,
            depends_on=needs,
            envs=self._envs(service),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=networks[network].name, aliases=aliases)
                for network in service.networks
            ],
            ports=[localhost_port(p.port, p.host_port) for p in service.localhost_ports],
            volumes=volume_args(service, {v: vol.name for v, vol in self._volumes.items()}),
            hosts=[
                docker.ContainerHostArgs(host=host, ip="host-gateway")
                for host in (
                    *((HOST_GATEWAY,) if service.host_gateway else ()),
                    *service.gateway_names,
                )
            ],
            devices=[
                docker.ContainerDeviceArgs(host_path=d, container_path=d, permissions="rwm")
                for d in service.devices
            ],
            group_adds=list(service.group_adds),
            command=list(service.command) or None,
            uploads=[
                *(
                    docker.ContainerUploadArgs(file=path, content=content)
                    for path, content in sorted(service.uploads.items())
                ),
                *(
                    docker.ContainerUploadArgs(file=path, content=self._secret(source))
                    for path, source in sorted(service.secret_files.items())
                ),
            ],
            # A service with steps must not wait for healthy before they run: its
            # last step waits instead.
            wait=not service.after_start,
            wait_timeout=300,
        )
        self.containers[service.container] = created
        for index, step in enumerate(service.after_start):
            last = index == len(service.after_start) - 1
            # Into this very container: during a start-first deploy the old one runs too.
            script = created.name.apply(
                functools.partial(
                    step_script,
                    shell.docker_path,
                    step,
                    last,
                )
            )
            rerun: pulumi.Input[str] = image_ref if step.rerun == "image" else created.id
            self._last_step = self.steps[f"{service.container}/{step.name}"] = shell.run(
                f"{name}-{step.name}",
                script,
                stdin=self._secret(step.stdin) if step.stdin else None,
                triggers=[rerun],
                opts=pulumi.ResourceOptions(
                    parent=parent,
                    depends_on=[created, *([self._last_step] if self._last_step else [])],
                    additional_secret_outputs=["stdout", "stderr"],
                ),
            )
        if start_first:
            # Once the new copy is healthy (its wait, or its last step): the old one
            # leaves nginx's upstream before the engine deletes it.
            healthy: list[pulumi.Resource] = [created]
            if service.after_start and self._last_step is not None:
                healthy.append(self._last_step)
            drain = functools.partial(
                drain_for, self._args.shell.docker_path, service, self._args.proxy_container
            )
            self.steps[f"{service.container}/drain"] = self._args.shell.run(
                f"{name}-drain",
                created.name.apply(drain),
                stdin=None,
                triggers=[created.id],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=healthy,
                    additional_secret_outputs=["stdout", "stderr"],
                ),
            )
