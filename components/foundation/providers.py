"""Explicit providers and connections, built from config values, never the ambient defaults.

The stack file disables the default docker and postgresql providers, so a
resource that misses its explicit provider fails instead of reaching the
operator's own Docker.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker

DIAL_ERROR_LIMIT = 3


def docker_provider(
    host: str, opts: pulumi.ResourceOptions | None = None, name: str = "hemma"
) -> docker.Provider:
    """Docker on machine ``name`` over SSH: the local ssh client runs ``docker system
    dial-stdio``.

    The SSH user must reach /var/run/docker.sock without sudo (member of the
    docker group); see the README's prerequisites.
    """
    return docker.Provider(f"{name}-docker", host=host, opts=opts)


def ssh_connection(
    host: str, port: int, user: str, private_key: str, host_key: str
) -> command.remote.ConnectionArgs:
    """How host units reach Hemma: key auth with the host key pinned.

    pulumi-command retries a failed dial 10 times by default, an authentication
    failure included (provider/pkg/provider/remote/connection.go); on Hemma,
    fail2ban's recidive jail bans for good after three bans, so a bad key gets
    few tries.
    """
    return command.remote.ConnectionArgs(
        host=host,
        port=port,
        user=user,
        private_key=pulumi.Output.secret(private_key),
        host_key=host_key,
        dial_error_limit=DIAL_ERROR_LIMIT,
        per_dial_timeout=30,
    )
