"""One app, as containers on Hemma.

Every service comes out the same way: its image pulled or built, a container
with a fixed name that is replaced delete-first, on its networks with its
service name as alias, routed through nginx-proxy when it has a route (on
hule-network, with ``VIRTUAL_HOST`` = ``LETSENCRYPT_HOST``), ports published on
127.0.0.1 only, a health check, a restart policy and rotated logs. Secret env
values are secret Outputs from generation to the container. A service with a
migration gets a command that runs it inside the new container once it is up,
and again whenever the container's image changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.foundation.adoption import adopt
from components.foundation.containers import (
    LOG_DRIVER,
    LOG_OPTS,
    RESTART_POLICY,
    container_options,
    healthcheck,
    image,
    localhost_port,
    protected_volume,
)
from components.foundation.secrets import generated_password, secret_value
from components.model.app import (
    HOST_GATEWAY,
    App,
    Build,
    DatabasePassword,
    DatabaseUrl,
    Generated,
    Image,
    OperatorSecret,
    Pull,
    SecretSource,
    Service,
)

DOCKER_SOCKET = "/var/run/docker.sock"


def route_env(service: Service, hostnames: Mapping[str, str]) -> dict[str, str]:
    """What nginx-proxy and acme-companion read off a routed container."""
    if service.route is None:
        return {}
    host = hostnames[service.route.id]
    return {
        "VIRTUAL_HOST": host,
        "VIRTUAL_PORT": str(service.route.port),
        "LETSENCRYPT_HOST": host,
    }


@dataclass(frozen=True)
class DatabaseLogin:
    """How an app logs in to shared-postgres."""

    role: str
    password: pulumi.Output[str]
    """Secret."""
    host: str
    """shared-postgres's name on hule-network."""
    port: int
    resource: pulumi.Resource
    """The role and databases, which must exist before the app's containers start."""


@dataclass(frozen=True)
class AppStackArgs:
    app: App
    networks: Mapping[str, docker.Network]
    """Docker name -> network, for every network the app's services join."""
    connection: command.remote.ConnectionArgs
    """SSH to Hemma, for the migrations."""
    docker_path: str
    """The docker CLI on Hemma, for the migrations."""
    hostnames: Mapping[str, str]
    """Route id -> public hostname."""
    database: DatabaseLogin | None = None
    source: str | None = None
    """The app's source checkout on the operator's machine, for images it builds."""
    operator_secrets: Mapping[str, str | None] = field(default_factory=dict)
    """Operator-held secrets by config key."""
    image_overrides: Mapping[str, str] = field(default_factory=dict)
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    import_ids: Mapping[str, str] = field(default_factory=dict)


class AppStack(pulumi.ComponentResource):
    """The containers, volumes, images, secrets and migrations of one app."""

    containers: dict[str, docker.Container]
    """By container name."""
    generated: dict[str, pulumi.Output[str]]
    """The app's generated secrets by name (secret Outputs)."""
    migrations: dict[str, command.remote.Command]
    """By container name: the command that migrates its database after a deploy."""

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
        volume_names = sorted({v for s in app.services for v in s.volumes})
        self._volumes = {
            volume: protected_volume(
                f"{name}-{volume}", volume, self, adopt(args.import_ids, "volume", volume)
            )
            for volume in volume_names
        }
        self.containers = {}
        self.migrations = {}
        for service in app.services:
            self._declare(service, args.networks, args.connection)
        self.register_outputs({"containers": list(self.containers)})

    # --- images and secrets -------------------------------------------------------

    def _image(
        self, resource_name: str, spec: Image
    ) -> tuple[pulumi.CustomResource, pulumi.Output[str]]:
        """The image resource and the reference a container runs: a new image, a new ID."""
        if isinstance(spec, Pull):
            pulled = image(resource_name, spec.ref, self)
            return pulled, pulled.image_id
        assert isinstance(spec, Build)
        source = self._args.source
        if source is None:
            raise ValueError(f"{self._app.name} builds images but has no source checkout")
        built = docker.Image(
            resource_name,
            image_name=spec.tag,
            skip_push=True,
            build=docker.DockerBuildArgs(
                context=os.path.join(source, spec.context),
                dockerfile=os.path.join(source, spec.dockerfile),
                args=dict(spec.args),
                platform="linux/amd64",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return built, built.repo_digest

    def _service_image(self, service: Service) -> tuple[pulumi.CustomResource, pulumi.Output[str]]:
        override = self._args.image_overrides.get(service.container)
        spec: Image = Pull(override) if override else service.image
        return self._image(f"{self._name}-{service.name}-image", spec)

    def _secret(self, source: SecretSource) -> pulumi.Output[str]:
        if isinstance(source, Generated):
            return self.generated[source.name]
        if isinstance(source, OperatorSecret):
            return pulumi.Output.secret(str(self._args.operator_secrets.get(source.key)))
        if self._database is None:
            raise ValueError(f"{self._app.name} has no database for {source}")
        if isinstance(source, DatabasePassword):
            return self._database.password
        assert isinstance(source, DatabaseUrl)
        return pulumi.Output.secret(
            pulumi.Output.format(
                "{0}://{1}:{2}@{3}:{4}/{5}",
                source.scheme,
                self._database.role,
                self._database.password,
                self._database.host,
                self._database.port,
                source.database,
            )
        )

    def _envs(self, service: Service) -> list[pulumi.Input[str]]:
        clear = {
            **service.env,
            **route_env(service, self._args.hostnames),
            **self._args.extra_env.get(service.container, {}),
        }
        envs: list[pulumi.Input[str]] = [f"{key}={value}" for key, value in sorted(clear.items())]
        for key, source in sorted(service.secret_env.items()):
            envs.append(pulumi.Output.secret(pulumi.Output.concat(key, "=", self._secret(source))))
        return envs

    # --- the container --------------------------------------------------------------------

    def _declare(
        self,
        service: Service,
        networks: Mapping[str, docker.Network],
        connection: command.remote.ConnectionArgs,
    ) -> None:
        name = f"{self._name}-{service.name}"
        # Images the service starts itself (Skriptoteket's runner) must be on Hemma first.
        extra_images = [
            self._image(f"{name}-extra-image-{index}", spec)[0]
            for index, spec in enumerate(service.extra_images)
        ]
        _, image_ref = self._service_image(service)
        volumes = [
            docker.ContainerVolumeArgs(volume_name=self._volumes[v].name, container_path=path)
            for v, path in sorted(service.volumes.items())
        ]
        if service.docker_socket:
            volumes.append(
                docker.ContainerVolumeArgs(
                    host_path=DOCKER_SOCKET,
                    container_path=DOCKER_SOCKET,
                    read_only=service.docker_socket == "read-only",
                )
            )
        container = docker.Container(
            name,
            name=service.container,
            image=image_ref,
            restart=RESTART_POLICY,
            envs=self._envs(service),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=networks[network].name, aliases=[service.name]
                )
                for network in service.networks
            ],
            ports=[localhost_port(p.port, p.host_port) for p in service.localhost_ports],
            volumes=volumes,
            healthcheck=healthcheck(["CMD-SHELL", *service.healthcheck], start_period="60s"),
            hosts=(
                [docker.ContainerHostArgs(host=HOST_GATEWAY, ip="host-gateway")]
                if service.host_gateway
                else []
            ),
            devices=[
                docker.ContainerDeviceArgs(host_path=d, container_path=d, permissions="rwm")
                for d in service.devices
            ],
            group_adds=list(service.group_adds),
            command=list(service.command) or None,
            uploads=[
                docker.ContainerUploadArgs(file=path, content=content)
                for path, content in sorted(service.uploads.items())
            ],
            wait=True,
            wait_timeout=300,
            log_driver=LOG_DRIVER,
            log_opts=LOG_OPTS,
            opts=container_options(
                self,
                depends_on=[*extra_images, *([self._database.resource] if self._database else [])],
            ),
        )
        self.containers[service.container] = container
        if service.migration:
            self.migrations[service.container] = command.remote.Command(
                f"{name}-migrate",
                connection=connection,
                create=f"{self._args.docker_path} exec {service.container} {service.migration}",
                triggers=[image_ref],
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[container],
                    additional_secret_outputs=["stdout", "stderr"],
                ),
            )
