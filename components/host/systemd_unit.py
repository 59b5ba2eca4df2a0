"""A systemd unit group on Hemma, installed, updated and removed over SSH."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.foundation.commands import as_command
from components.host.unit_files import UnitGroup, install_script, remove_script


@dataclass(frozen=True)
class SystemdUnitArgs:
    group: UnitGroup
    connection: command.remote.ConnectionArgs
    secret_content: pulumi.Input[str] | None = None
    """The content of the group's secret file, when it has one."""
    secret_values: frozenset[str] = frozenset()
    """Values of config keys set as secrets: a unit file holding one makes the install
    command secret (the file travels base64-encoded, where no later check sees it)."""
    secret: bool = False
    """The install command is secret whatever its files hold (the drift check's
    manifest, when it hashes a file that holds a secret value)."""


class SystemdUnit(pulumi.ComponentResource):
    """Installs a ``UnitGroup`` with passwordless sudo through pulumi-command.

    ``create`` and ``update`` run the same idempotent install script, so a content
    change rewrites the files and restarts what runs; ``delete`` stops, disables and
    removes the units. Nothing runs during preview. stdout and stderr are kept as
    secrets in state, and a secret file's content travels on stdin, never in the
    command string.
    """

    group_name: str
    """The unit group, e.g. ``hemma-postgres-backup``."""
    units: list[str]
    """The unit files it installs."""
    schedule: str | None
    """The timer's OnCalendar, None for a long-running service."""
    install: command.remote.Command
    """The command that installs the group: what a step needing its files waits for."""

    def __init__(
        self, name: str, args: SystemdUnitArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:host:SystemdUnit", name, None, opts)
        group, connection, secret_content = args.group, args.connection, args.secret_content
        if (secret_content is None) != (group.secret_file is None):
            raise ValueError(f"{group.name}: a secret file needs its content, and only then")
        self.group_name = group.name
        self.units = list(group.unit_names)
        self.schedule = group.schedule
        holds_secret = args.secret or any(
            secret in f.content or secret in f.path
            for f in group.files
            for secret in args.secret_values
        )
        install: pulumi.Input[str] = as_command(install_script(group))
        if holds_secret:
            install = pulumi.Output.secret(install)
        self.install = command.remote.Command(
            f"{name}-install",
            connection=connection,
            create=install,
            update=install,
            delete=as_command(remove_script(group)),
            stdin=pulumi.Output.secret(secret_content) if secret_content is not None else None,
            add_previous_output_in_env=False,
            logging=(
                command.remote.Logging.NONE
                if secret_content is not None
                else command.remote.Logging.STDOUT_AND_STDERR
            ),
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["stdout", "stderr"]
            ),
        )
        self.register_outputs({"units": self.units, "schedule": self.schedule})
