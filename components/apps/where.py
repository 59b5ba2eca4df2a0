"""Where an app's resources go: Hemma, or another machine (``hemma:hosts``).

On Hemma they are the app component's own children and inherit its provider. On
another machine they are children of an ``OnHost`` component, one per machine and
app, which carries that machine's provider: a child takes its parent's providers
(pulumi sdk/python/lib/pulumi/resource.py: ``self._providers = opts.parent._providers``,
then ``{**self._providers, **opts_providers}``), so nothing placed there can reach
Hemma's Docker by omission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.foundation.shell import HostShell


@dataclass(frozen=True)
class Elsewhere:
    """A machine other than Hemma, as the services placed there see it."""

    host: str
    provider: pulumi.ProviderResource
    """Its Docker: every image, volume and container placed there is declared with it."""
    shell: HostShell
    """SSH to it: the steps of its containers run there."""
    docker_host: str
    """Its daemon as ``docker --host`` reaches it, for the builds."""
    networks: Mapping[str, docker.Network]
    """Its own copy of each network its services join."""


class OnHost(pulumi.ComponentResource):
    """The parent of an app's resources on another machine: they inherit its provider."""

    def __init__(self, name: str, where: Elsewhere, parent: pulumi.Resource) -> None:
        super().__init__(
            "hemma:app:OnHost",
            name,
            None,
            pulumi.ResourceOptions(parent=parent, providers={"docker": where.provider}),
        )
        self.where = where
