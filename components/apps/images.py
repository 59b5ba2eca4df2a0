"""An app's images: pulled from a registry, or built from its source checkout."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_command as command

from components.foundation.builds import build_command, image_tag, remove_command
from components.foundation.containers import image
from components.model.app import Image, Pull


def app_image(
    resource_name: str,
    spec: Image,
    parent: pulumi.Resource,
    source: str | None,
    digests: Mapping[str, str],
    docker_host: str,
    retention: int,
) -> tuple[pulumi.Resource, pulumi.Input[str]]:
    """The image resource and the reference a container runs: a new image, a new one."""
    if isinstance(spec, Pull):
        pulled = image(resource_name, spec.ref, parent)
        return pulled, pulled.image_id
    assert source is not None, "checked by the caller"
    digest = digests[spec.repository]
    tag = image_tag(spec, digest)
    built = command.local.Command(
        resource_name,
        create=build_command(docker_host, source, spec, tag),
        delete=remove_command(docker_host, spec, retention),
        triggers=[digest],
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return built, tag
