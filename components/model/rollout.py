"""How a change replaces a service's container, and how a container is found whatever
its own name: a start-first container is named ``SERVICE-DIGEST`` and labelled with
its service."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

SERVICE_LABEL = "education.hule.hemma.service"
"""On a start-first container: its service's stable name (``Service.container``), by
which host jobs, the drill and the doctor find it whatever its own name."""

NAME_DIGEST_LENGTH = 12
"""Hex digits of the digest in a start-first container's name, ``SERVICE-DIGEST``."""

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
