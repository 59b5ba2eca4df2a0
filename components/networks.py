"""Docker networks: the shared hule-network and each app's internal network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from components.adoption import adopt


class Networks(pulumi.ComponentResource):
    """Every Docker network the stack uses, by its Docker name."""

    by_name: dict[str, docker.Network]

    def __init__(
        self,
        name: str,
        names: Sequence[str],
        import_ids: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hemma:network:Networks", name, None, opts)
        self.by_name = {
            network: docker.Network(
                f"{name}-{network}",
                name=network,
                opts=pulumi.ResourceOptions(parent=self).merge(
                    adopt(import_ids, "network", network, differs_on=["labels", "ipamConfigs"])
                ),
            )
            for network in names
        }
        self.register_outputs({"names": list(self.by_name)})

    def __getitem__(self, network: str) -> docker.Network:
        return self.by_name[network]
