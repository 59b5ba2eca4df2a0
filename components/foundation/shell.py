"""Where the program's shell steps run: on Hemma over SSH, or, for the local stack,
on this machine against its own Docker.

A step is a bash script (``components/foundation/commands.py``) that runs the
docker CLI. On Hemma it is the snap's CLI at ``dockerPath``, reached through
pulumi-command's ``remote.Command``; locally it is ``docker`` on PATH, pointed at
the stack's daemon with ``DOCKER_HOST``, through ``local.Command``. pulumi-command
replaces either only when ``triggers`` change (common/inputs.go).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.foundation.commands import as_command

LOCAL_DOCKER = "docker"


@dataclass(frozen=True)
class HostShell:
    """SSH to Hemma (``connection``), or this machine's Docker (``local_docker_host``)."""

    docker_path: str
    """The docker CLI the steps call."""
    connection: command.remote.ConnectionArgs | None = None
    local_docker_host: str | None = None

    @staticmethod
    def remote(connection: command.remote.ConnectionArgs, docker_path: str) -> HostShell:
        return HostShell(docker_path=docker_path, connection=connection)

    @staticmethod
    def local(docker_host: str) -> HostShell:
        return HostShell(docker_path=LOCAL_DOCKER, local_docker_host=docker_host)

    def run(
        self,
        name: str,
        script: pulumi.Input[str],
        *,
        stdin: pulumi.Input[str] | None,
        triggers: Sequence[pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> pulumi.CustomResource:
        """A command resource that runs ``script`` with bash once, and again on ``triggers``
        (pulumi-command runs ``create`` again on an update too: a changed script)."""
        create: pulumi.Input[str] = (
            as_command(script)
            if isinstance(script, str)
            else pulumi.Output.from_input(script).apply(as_command)  # type: ignore[arg-type]
        )
        if self.connection is not None:
            return command.remote.Command(
                name,
                connection=self.connection,
                create=create,
                stdin=stdin,
                triggers=list(triggers),
                add_previous_output_in_env=False,
                logging=command.remote.Logging.STDOUT_AND_STDERR,
                opts=opts,
            )
        assert self.local_docker_host is not None
        return command.local.Command(
            name,
            create=create,
            stdin=stdin,
            triggers=list(triggers),
            environment={"DOCKER_HOST": self.local_docker_host},
            add_previous_output_in_env=False,
            logging=command.local.Logging.STDOUT_AND_STDERR,
            opts=opts,
        )
