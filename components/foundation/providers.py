"""Explicit providers and connections, built from config values, never the ambient defaults.

The stack file disables the default docker and postgresql providers, so a
resource that misses its explicit provider fails instead of reaching the
operator's own Docker.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker


def docker_provider(host: str) -> docker.Provider:
    """Docker on Hemma over SSH: the local ssh client runs ``docker system dial-stdio``.

    The SSH user must reach /var/run/docker.sock without sudo (member of the
    docker group); see the README's prerequisites.
    """
    return docker.Provider("hemma-docker", host=host)


def ssh_connection(
    host: str, port: int, user: str, private_key: str, host_key: str
) -> command.remote.ConnectionArgs:
    """How host units reach Hemma: key auth with the host key pinned."""
    return command.remote.ConnectionArgs(
        host=host,
        port=port,
        user=user,
        private_key=pulumi.Output.secret(private_key),
        host_key=host_key,
    )
