"""Docker networks: the shared hule-network and each app's internal network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.foundation.adoption import adopt


@dataclass(frozen=True)
class NetworksArgs:
    names: Sequence[str]
    """Docker names of the networks, hule-network first."""
    import_ids: Mapping[str, str] = field(default_factory=dict)
    """``network/NAME`` -> ID of a hand-made network to adopt."""


class Networks(pulumi.ComponentResource):
    """Every Docker network the stack uses, by its Docker name."""

    by_name: dict[str, docker.Network]
    """Docker name -> network."""

    def __init__(
        self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hemma:network:Networks", name, None, opts)
        self.by_name = {
            network: docker.Network(
                f"{name}-{network}",
                name=network,
                # labels force a new network (terraform-provider-docker
                # resource_docker_network.go: Optional, ForceNew, not Computed); a
                # hand-made network's compose labels are not the program's to change,
                # and replacing hule-network would cut every container off it.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["labels"]).merge(
                    adopt(args.import_ids, "network", network)
                ),
            )
            for network in args.names
        }
        self.register_outputs({"names": list(self.by_name)})

    def __getitem__(self, network: str) -> docker.Network:
        return self.by_name[network]
