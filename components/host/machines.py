"""Each machine the stack runs on: its Docker provider, its SSH shell, its networks.

Hemma's provider keeps its name (``hemma-docker``) and its networks theirs
(``networks-NAME``), so a config without further machines declares what it always
has. Every other machine gets a provider of its own, named after it, and its own
copy of each network the services placed there join: a Docker network is one
daemon's. Nothing uses a default provider (the stack file disables them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config.stack import StackConfig
from components.foundation.networks import Networks, NetworksArgs
from components.foundation.providers import docker_provider, ssh_connection
from components.foundation.shell import HostShell
from components.model.app import App, network_names
from components.model.placement import Machine, Placement
from components.model.values import PLATFORM_HOST


@dataclass(frozen=True)
class Place:
    """One machine, as the resources placed on it need it."""

    machine: Machine
    provider: docker.Provider
    shell: HostShell
    networks: Networks

    @property
    def opts(self) -> pulumi.ResourceOptions:
        """For a component whose Docker resources all run here."""
        return pulumi.ResourceOptions(providers={"docker": self.provider})


def shell_for(config: StackConfig, machine: Machine) -> HostShell:
    """Where the steps run: the machine over SSH, or this machine's Docker (the local
    stack)."""
    if config.local:
        return HostShell.local(config.docker_host)
    connection = ssh_connection(
        host=machine.ssh_host,
        port=machine.ssh_port,
        user=machine.ssh_user,
        private_key=config.ssh_private_key or "",
        host_key=machine.ssh_host_key,
    )
    return HostShell.remote(connection, machine.docker_path)


def places(
    config: StackConfig,
    catalog: tuple[App, ...],
    placement: Placement,
    secret: pulumi.ResourceOptions,
) -> dict[str, Place]:
    """Every machine something is placed on, Hemma first."""
    machines = config.machines()
    found = {}
    for host in placement.hosts():
        machine = machines[host]
        provider = docker_provider(machine.docker_host, secret, name=host)
        opts = pulumi.ResourceOptions(providers={"docker": provider}).merge(secret)
        if host == PLATFORM_HOST:
            names, component, adopted = network_names(catalog), "networks", config.import_ids
        else:
            used = {
                n for app in placement.on(host, catalog) for s in app.services for n in s.networks
            }
            names = [n for n in network_names(catalog) if n in used]
            # Adoption takes over what was made by hand on Hemma only.
            component, adopted = f"networks-{host}", {}
        networks = Networks(component, NetworksArgs(names, adopted), opts=opts)
        found[host] = Place(machine, provider, shell_for(config, machine), networks)
    return found
