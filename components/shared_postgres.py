"""shared-postgres: the PostgreSQL 16 server that holds every app's databases.

Each app gets one login role that owns its databases and nothing else. Owning
the database is what lets the role create tables on PostgreSQL 15+, where
``GRANT ALL ON DATABASE`` no longer does (CREATE on schema public was taken
from PUBLIC). CONNECT is revoked from PUBLIC on every database, so one app's
role cannot even open another app's database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.adoption import adopt
from components.config import PostgresConfig
from components.containers import (
    LOCALHOST,
    LOG_DRIVER,
    LOG_OPTS,
    RESTART_POLICY,
    container_options,
    healthcheck,
    image,
    localhost_port,
    protected_volume,
)
from components.secrets import generated_password, secret_value

ADMIN_USER = "postgres"
DATA_DIR = "/var/lib/postgresql/data"
CONTAINER_PORT = 5432


class AppDatabase(pulumi.ComponentResource):
    """One app's login role and the databases it owns."""

    role_name: str
    database_names: list[str]
    password: pulumi.Output[str]
    """Secret."""
    connection_strings: pulumi.Output[dict[str, str]]
    """Secret: ``{database: postgresql://role:password@shared-postgres:5432/database}``."""

    def __init__(
        self,
        name: str,
        role: str,
        databases: Sequence[str],
        server_host: str,
        import_ids: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hemma:database:AppDatabase", name, None, opts)
        self.role_name = role
        self.database_names = list(databases)
        self.password = secret_value(generated_password(f"{name}-password", self))

        login = postgresql.Role(
            f"{name}-role",
            name=role,
            login=True,
            superuser=False,
            create_database=False,
            create_role=False,
            replication=False,
            bypass_row_level_security=False,
            password=self.password,
            opts=pulumi.ResourceOptions(parent=self, protect=True).merge(
                adopt(import_ids, "role", role, differs_on=["password"])
            ),
        )
        for database in databases:
            created = postgresql.Database(
                f"{name}-{database}",
                name=database,
                owner=login.name,
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True).merge(
                    adopt(import_ids, "database", database, differs_on=["owner"])
                ),
            )
            postgresql.Grant(
                f"{name}-{database}-revoke-public",
                database=created.name,
                role="public",
                object_type="database",
                privileges=[],
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.connection_strings = pulumi.Output.secret(
            pulumi.Output.all(
                **{
                    database: pulumi.Output.format(
                        "postgresql://{0}:{1}@{2}:{3}/{4}",
                        login.name,
                        self.password,
                        server_host,
                        CONTAINER_PORT,
                        database,
                    )
                    for database in databases
                }
            )
        )
        self.register_outputs(
            {
                "role": self.role_name,
                "databases": self.database_names,
                "connection_strings": self.connection_strings,
            }
        )


class SharedPostgres(pulumi.ComponentResource):
    """The shared-postgres container, its data volume, and the provider that manages it."""

    container: docker.Container
    provider: postgresql.Provider
    admin_password: pulumi.Output[str]
    """Secret."""

    def __init__(
        self,
        name: str,
        config: PostgresConfig,
        network: docker.Network,
        import_ids: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hemma:database:SharedPostgres", name, None, opts)
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
        self.container = docker.Container(
            f"{name}-container",
            name=config.container_name,
            image=image(f"{name}-image", config.image, self).image_id,
            restart=RESTART_POLICY,
            envs=[
                f"POSTGRES_USER={ADMIN_USER}",
                pulumi.Output.concat("POSTGRES_PASSWORD=", self.admin_password),
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network.name, aliases=[config.container_name]
                )
            ],
            ports=[localhost_port(CONTAINER_PORT, config.host_port)],
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=DATA_DIR)],
            healthcheck=healthcheck(["CMD-SHELL", f"pg_isready -U {ADMIN_USER} -d postgres"]),
            wait=True,
            wait_timeout=180,
            log_driver=LOG_DRIVER,
            log_opts=LOG_OPTS,
            opts=container_options(self),
        )
        # Reached through `ssh -L <tunnel_port>:127.0.0.1:<host_port> hemma`; the
        # stock image has no TLS, and the traffic never leaves the tunnel.
        self.provider = postgresql.Provider(
            f"{name}-provider",
            host=LOCALHOST,
            port=config.tunnel_port,
            username=ADMIN_USER,
            password=self.admin_password,
            database="postgres",
            sslmode="disable",
            superuser=True,
            connect_timeout=15,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )
        self.register_outputs({"container_name": config.container_name})

    def database_for(self, app: str, role: str, databases: Sequence[str]) -> AppDatabase:
        """Declare ``app``'s login role and the databases it owns."""
        return AppDatabase(
            f"{self._name}-{app}",
            role=role,
            databases=databases,
            server_host=self._config.container_name,
            import_ids=self._import_ids,
            opts=pulumi.ResourceOptions(
                parent=self, providers={"postgresql": self.provider}, depends_on=[self.container]
            ),
        )
