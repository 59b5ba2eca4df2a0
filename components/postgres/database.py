"""One app's place on shared-postgres: a login role that owns its databases.

Owning the database is what lets the role create tables on PostgreSQL 15+,
where ``GRANT ALL ON DATABASE`` no longer does (CREATE on schema public was
taken from PUBLIC). CONNECT is revoked from PUBLIC on every database, so one
app's role cannot even open another app's database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_postgresql as postgresql

from components.config.stack import POSTGRES_PORT
from components.foundation.adoption import adopt
from components.foundation.secrets import generated_password, secret_value


@dataclass(frozen=True)
class AppDatabaseArgs:
    role: str
    databases: Sequence[str]
    server_host: str
    """shared-postgres's name on hule-network, for the connection strings."""
    import_ids: Mapping[str, str] = field(default_factory=dict)
    server: pulumi.Resource | None = None
    """The shared-postgres container: the role and the databases wait for it."""


class AppDatabase(pulumi.ComponentResource):
    """One app's login role and the databases it owns."""

    role_name: str
    """The app's login role."""
    database_names: list[str]
    """The databases it owns."""
    password: pulumi.Output[str]
    """Secret."""
    connection_strings: pulumi.Output[dict[str, str]]
    """Secret: ``{database: postgresql://role:password@shared-postgres:5432/database}``."""

    def __init__(
        self, name: str, args: AppDatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:database:AppDatabase", name, None, opts)
        role, databases, import_ids = args.role, args.databases, args.import_ids
        self.role_name = role
        self.database_names = list(databases)
        self.password = secret_value(generated_password(f"{name}-password", self))
        after_server = [args.server] if args.server is not None else None

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
            opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=after_server).merge(
                adopt(import_ids, "role", role)
            ),
        )
        for database in databases:
            created = postgresql.Database(
                f"{name}-{database}",
                name=database,
                owner=login.name,
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True).merge(
                    adopt(import_ids, "database", database)
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
                        args.server_host,
                        POSTGRES_PORT,
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
