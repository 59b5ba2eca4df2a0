"""How a change replaces a service's container, and how a container is found whatever
its own name: a start-first container is named ``SERVICE-XXXXXXXXXXXX`` (12 random hex
digits, drawn again whenever its inputs change) and labelled with
its service."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from components.model.host import HostFile

HOST_LIB = "/usr/local/lib/hemma"

SERVICE_LABEL = "education.hule.hemma.service"
"""On a start-first container: its service's stable name (``Service.container``), by
which host jobs, the drill and the doctor find it whatever its own name."""

NAME_DIGEST_LENGTH = 12
"""Hex digits of the random part of a start-first container's name."""

Rollout = Literal["start-first", "delete-first"]


def stable_name(name: str, labels: Mapping[str, str]) -> str:
    """A container's service: a start-first container's ``SERVICE_LABEL`` when its own
    name is that label and a digest; any other container's own name."""
    label = labels.get(SERVICE_LABEL)
    if label is not None and re.fullmatch(
        rf"{re.escape(label)}-[0-9a-f]{{{NAME_DIGEST_LENGTH}}}", name
    ):
        return label
    return name


def declared_service(inputs: Mapping[str, Any]) -> str | None:
    """``stable_name`` of a container from its inputs as the engine has them
    (``name``, ``labels`` as ``{label, value}`` entries); None without a plain name."""
    name = inputs.get("name")
    if not isinstance(name, str):
        return None
    labels = {
        str(label.get("label")): str(label.get("value"))
        for label in inputs.get("labels") or []
        if isinstance(label, Mapping)
    }
    return stable_name(name, labels)


def running_container(docker: str, service: str) -> str:
    """A shell command that prints the container to exec into for ``service``: the
    newest healthy one labelled with it (``docker ps`` lists the newest first), else
    the newest running one, else the name itself (a delete-first container, the
    hand-made server's). Healthy first: during a deploy, or after one whose new copy
    never turned healthy, the newest copy is not the one that serves."""
    q = shlex.quote
    listed = f"{q(docker)} ps -q --filter {q(f'label={SERVICE_LABEL}={service}')}"
    return (
        f"{{ {listed} --filter health=healthy | head -n 1 | grep . "
        f"|| {listed} --filter status=running | head -n 1 | grep . "
        f"|| echo {q(service)}; }}"
    )


def in_service_script(docker: str, service: str, options: Sequence[str] = ()) -> str:
    """A host script that runs its arguments inside ``service``'s container with
    ``docker exec OPTIONS``, whatever that container is named today."""
    words = shlex.join([docker, "exec", *options])
    return (
        "#!/bin/sh\n"
        f"# Runs its arguments inside {service}'s running container, found by its label\n"
        "# when it deploys start-first (its own name then changes with each deploy).\n"
        "set -eu\n"
        f"container=$({running_container(docker, service)})\n"
        f'exec {words} "$container" "$@"\n'
    )


def in_service(job: str, docker: str, service: str, options: Sequence[str] = ()) -> HostFile:
    """``in_service_script`` as a file of the host job ``job``; its ``ExecStart=`` is the
    file's path and the command to run inside the container."""
    return HostFile(
        f"{HOST_LIB}/{job}-in-{service}", in_service_script(docker, service, options), "0755"
    )
