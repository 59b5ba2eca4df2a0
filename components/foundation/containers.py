"""What every container on Hemma gets, whichever component declares it."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

RESTART_POLICY = "unless-stopped"
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "5"}
LOCALHOST = "127.0.0.1"


def container_options(
    parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.ResourceOptions:
    """Containers have fixed names and often fixed host ports, so the old one must go
    before its replacement starts, or Docker answers "name in use"."""
    return pulumi.ResourceOptions(
        parent=parent, delete_before_replace=True, depends_on=list(depends_on)
    )


def protected_volume(
    name: str, docker_name: str, parent: pulumi.Resource, adopt: pulumi.ResourceOptions
) -> docker.Volume:
    """A data volume that no ``pulumi up`` or ``destroy`` can delete.

    Labels and driver options are ignored: a volume is identified by its name, and
    one created by compose carries compose labels that must not force a replacement.
    """
    return docker.Volume(
        name,
        name=docker_name,
        opts=pulumi.ResourceOptions(
            parent=parent,
            protect=True,
            retain_on_delete=True,
            ignore_changes=["labels", "driverOpts"],
        ).merge(adopt),
    )


def image(name: str, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
    """A pulled image; containers use its ID, so a new image replaces them."""
    return docker.RemoteImage(
        name, name=reference, keep_locally=True, opts=pulumi.ResourceOptions(parent=parent)
    )


def healthcheck(test: list[str], start_period: str = "30s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test, interval="15s", timeout="5s", retries=5, start_period=start_period
    )


def localhost_port(port: int, host_port: int | None = None) -> docker.ContainerPortArgs:
    """A published port reachable only from Hemma itself (and SSH tunnels)."""
    return docker.ContainerPortArgs(internal=port, external=host_port or port, ip=LOCALHOST)
