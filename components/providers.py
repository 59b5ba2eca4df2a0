"""Explicit providers and connections, built from config, never the ambient defaults."""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config import StackConfig


def docker_provider(config: StackConfig) -> docker.Provider:
    """Docker on Hemma over SSH: the local ssh client runs ``docker system dial-stdio``.

    The SSH user must reach /var/run/docker.sock without sudo (member of the
    docker group); see the README's prerequisites.
    """
    return docker.Provider("hemma-docker", host=config.docker_host)


def ssh_connection(config: StackConfig) -> command.remote.ConnectionArgs:
    """How host units reach Hemma: key auth with the host key pinned."""
    return command.remote.ConnectionArgs(
        host=config.ssh_host,
        port=config.ssh_port,
        user=config.ssh_user,
        private_key=pulumi.Output.secret(config.ssh_private_key),
        host_key=config.ssh_host_key,
    )
