"""shared-postgres: the PostgreSQL 16 server that holds every app's databases,
and the provider that manages roles and databases on it through the SSH tunnel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.config.platform import PostgresConfig
from components.config.stack import POSTGRES_PORT
from components.foundation.adoption import adopt
from components.foundation.containers import (
    LOCALHOST,
    ContainerDefaults,
    Health,
    container,
    image,
    localhost_port,
    protected_volume,
)
from components.foundation.secrets import generated_password, secret_value
from components.postgres.database import AppDatabase, AppDatabaseArgs

ADMIN_USER = "postgres"
DATA_DIR = "/var/lib/postgresql/data"
STOP_GRACE_SECONDS = 60
"""The image stops on SIGINT (fast shutdown: a checkpoint, then exit); a large
checkpoint takes longer than Docker's default 10 s (docker-library/postgres Dockerfile)."""


@dataclass(frozen=True)
class SharedPostgresArgs:
    config: PostgresConfig
    network: docker.Network
    """hule-network: every app with a database reaches the server over it."""
    import_ids: Mapping[str, str] = field(default_factory=dict)
    defaults: ContainerDefaults = field(default_factory=ContainerDefaults)
    tunnelled: bool = True
    """The provider reaches the server through the SSH tunnel (``tunnelPort``); the
    local stack's provider connects to the published ``hostPort`` itself."""


class SharedPostgres(pulumi.ComponentResource):
    """The shared-postgres container, its data volume, and the provider that manages it."""

    container: docker.Container
    """The shared-postgres container."""
    provider: postgresql.Provider
    """Manages roles and databases through the SSH tunnel."""
    admin_password: pulumi.Output[str]
    """Secret: the ``postgres`` superuser's password."""

    def __init__(
        self, name: str, args: SharedPostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:database:SharedPostgres", name, None, opts)
        config, network, import_ids = args.config, args.network, args.import_ids
        self._name = name
        self._config = config
        self._import_ids = import_ids
        self.admin_password = secret_value(generated_password(f"{name}-admin-password", self))

        data = protected_volume(
            f"{name}-data",
            config.data_volume,
            self,
            adopt(import_ids, "volume", config.data_volume),
        )
        self.container = container(
            f"{name}-container",
            parent=self,
            docker_name=config.container_name,
            image=image(f"{name}-image", config.image, self).image_id,
            health=Health(f"pg_isready -U {ADMIN_USER} -d postgres"),
            stop_grace_seconds=STOP_GRACE_SECONDS,
            defaults=args.defaults,
            envs=[
                f"POSTGRES_USER={ADMIN_USER}",
                pulumi.Output.concat("POSTGRES_PASSWORD=", self.admin_password),
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network.name, aliases=[config.container_name]
                )
            ],
            ports=[localhost_port(POSTGRES_PORT, config.host_port)],
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=DATA_DIR)],
            wait=True,
            wait_timeout=180,
        )
        # Reached through `ssh -L <tunnel_port>:127.0.0.1:<host_port> hemma`; the
        # stock image has no TLS, and the traffic never leaves the tunnel. It does not
        # wait for the container itself: every `up --target` targets providers
        # implicitly, and one that depends on a container the run does not create
        # stops the run ("untargeted create", pulumi step_generator.go). It connects
        # only when a role or database needs it, and those wait for the container.
        self.provider = postgresql.Provider(
            f"{name}-provider",
            host=LOCALHOST,
            port=config.tunnel_port if args.tunnelled else config.host_port,
            username=ADMIN_USER,
            password=self.admin_password,
            database="postgres",
            sslmode="disable",
            superuser=True,
            connect_timeout=15,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"container_name": config.container_name})

    def database_for(self, app: str, role: str, databases: Sequence[str]) -> AppDatabase:
        """Declare ``app``'s login role and the databases it owns."""
        return AppDatabase(
            f"{self._name}-{app}",
            AppDatabaseArgs(
                role=role,
                databases=databases,
                server_host=self._config.container_name,
                import_ids=self._import_ids,
                server=self.container,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, providers={"postgresql": self.provider}, depends_on=[self.container]
            ),
        )
