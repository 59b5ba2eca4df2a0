"""What every container on Hemma gets, whichever component declares it.

Every input is written in the form terraform-provider-docker reads back
(kreuzwerker v4.5.0 resource_docker_container_funcs.go, read at lines
949-978): a health-check duration is stored as Go's ``Duration.String()``,
so ``60s`` would come back as ``1m0s`` and differ on every preview. A changed
health check is not applied by the provider's Update (same file, update
func), so its digest is also a label: labels force a replacement, and the new
check reaches the container.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random
from pulumi import _types

from components.model.rollout import NAME_DIGEST_LENGTH, SERVICE_LABEL

RESTART_POLICY = "unless-stopped"
LOG_DRIVER = "json-file"
DEFAULT_LOG_OPTS = {"max-size": "10m", "max-file": "5"}
LOCALHOST = "127.0.0.1"
HEALTHCHECK_LABEL = "education.hule.hemma.healthcheck"
"""A digest of the container's health check: a change replaces the container."""


def go_duration(seconds: int) -> str:
    """``seconds`` as Go's ``time.Duration.String()`` prints it: 15s, 1m0s, 1h0m0s."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class Health:
    """A ``CMD-SHELL`` health check and its timing, in seconds."""

    command: str
    start_period: int = 30
    interval: int = 15
    timeout: int = 5
    retries: int = 5

    def args(self) -> docker.ContainerHealthcheckArgs:
        return docker.ContainerHealthcheckArgs(
            tests=["CMD-SHELL", self.command],
            interval=go_duration(self.interval),
            timeout=go_duration(self.timeout),
            retries=self.retries,
            start_period=go_duration(self.start_period),
        )

    def digest(self) -> str:
        encoded = json.dumps(
            [self.command, self.interval, self.timeout, self.retries, self.start_period]
        )
        return hashlib.sha256(encoded.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ContainerDefaults:
    """What the stack config sets for every container."""

    log_opts: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LOG_OPTS))
    """json-file options; must hold every key the daemon's own ``log-opts`` sets, which
    it merges into each container's options (moby daemon/logs.go:199-205)."""
    name_key: pulumi.Input[str] | None = None
    """The secret a start-first container's name is keyed with (``start_first_name``)."""


def _plain(value: Any) -> Any:
    """A resolved input as JSON: args classes as their fields, in a stable order."""
    if _types.is_input_type(type(value)):
        return {k: _plain(v) for k, v in sorted(vars(value).items()) if v is not None}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def input_digest(inputs: Mapping[str, Any], key: pulumi.Input[str]) -> pulumi.Output[str]:
    """An HMAC of every input a container is created with, keyed with a generated
    secret: the inputs hold secrets (env, uploads), and a plain hash of them, kept in
    the state as a keeper, would let anyone with the stack file test guesses of a
    weak one. The digest itself is not secret."""

    def digest(resolved: list[Any]) -> str:
        secret, values = resolved
        encoded = json.dumps(_plain(values), sort_keys=True, separators=(",", ":"))
        return hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).hexdigest()

    return pulumi.Output.unsecret(
        pulumi.Output.all(key, pulumi.Output.from_input(dict(inputs))).apply(digest)
    )


def start_first_name(
    resource_name: str,
    docker_name: str,
    inputs: Mapping[str, Any],
    key: pulumi.Input[str],
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """``DOCKER_NAME-RANDOM``: a new name whenever the inputs change, so the new
    container can start beside the old one (a fixed name fails with "name already in
    use"), and the same name while they do not. The random part is a ``RandomId``
    kept by the inputs' digest: it is drawn again on every change, also on a change
    back to earlier inputs, whose old container may still exist (a deploy whose new
    copy never turned healthy leaves it running, to be deleted later): a name
    derived from the inputs alone would collide with it there."""
    suffix = random.RandomId(
        f"{resource_name}-name",
        byte_length=NAME_DIGEST_LENGTH // 2,
        keepers={"inputs": input_digest(inputs, key)},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.concat(docker_name, "-", suffix.hex)


def container(
    resource_name: str,
    *,
    parent: pulumi.Resource,
    docker_name: str,
    image: pulumi.Input[str],
    health: Health,
    stop_grace_seconds: int,
    defaults: ContainerDefaults,
    labels: Mapping[str, str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    start_first: bool = False,
    **args: Any,
) -> docker.Container:
    """A container with a health check, a restart policy, rotated logs and a stop grace
    period.

    Delete-first (the default) keeps the fixed name ``docker_name``: the old container
    goes before its replacement starts, or Docker answers "name in use".
    ``start_first`` names it ``start_first_name(...)`` instead and sets
    ``delete_before_replace=False`` explicitly, overriding pulumi-docker's default
    ``DeleteBeforeReplace: true`` for containers (provider/resources.go): the engine
    creates the new one, waits for it, and deletes the old one at the end of the
    update.

    Without ``destroy_grace_seconds`` the provider stops a container with
    timeout 0 (kreuzwerker resource_docker_container_funcs.go:1087-1093), so the
    stop signal is followed at once by SIGKILL. That covers the provider's delete
    only: when the daemon itself stops its containers (a snap refresh, ``snap
    disable``), each gets its own ``StopTimeout``, 10 s when unset (moby
    container.StopTimeout), so the same grace goes there too (``stop_timeout``, read
    back as sent: resource_docker_container_funcs.go:978).
    """
    all_labels = {**(labels or {}), HEALTHCHECK_LABEL: health.digest()}
    if start_first:
        # Its own name changes with each deploy; the label and the name's form
        # (stable_name) say which service it is.
        all_labels[SERVICE_LABEL] = docker_name
    inputs: dict[str, Any] = {
        "image": image,
        "restart": RESTART_POLICY,
        "healthcheck": health.args(),
        "labels": [
            docker.ContainerLabelArgs(label=key, value=value)
            for key, value in sorted(all_labels.items())
        ],
        "destroy_grace_seconds": stop_grace_seconds,
        "stop_timeout": stop_grace_seconds,
        "log_driver": LOG_DRIVER,
        "log_opts": dict(defaults.log_opts),
        **args,
    }
    name: pulumi.Input[str] = docker_name
    if start_first:
        if defaults.name_key is None:
            raise ValueError(f"{docker_name}: a start-first container needs a name key")
        name = start_first_name(resource_name, docker_name, inputs, defaults.name_key, parent)
    return docker.Container(
        resource_name,
        name=name,
        **inputs,
        opts=pulumi.ResourceOptions(
            parent=parent, delete_before_replace=not start_first, depends_on=list(depends_on)
        ),
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


def localhost_port(port: int, host_port: int | None = None) -> docker.ContainerPortArgs:
    """A published port reachable only from Hemma itself (and SSH tunnels)."""
    return docker.ContainerPortArgs(internal=port, external=host_port or port, ip=LOCALHOST)
