"""Start-first containers as the operator's tools see them: named ``SERVICE-XXXXXXXXXXXX``
and labelled with their service, the same as components/model/rollout.py (which the
tools do not import; a test holds the two together)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

SERVICE_LABEL = "education.hule.hemma.service"
NAME_DIGEST_LENGTH = 12


def stable_name(name: str, labels: Mapping[str, str]) -> str:
    """The service a container is: its label when its own name is that label and a
    digest, else its own name."""
    label = labels.get(SERVICE_LABEL)
    if label is not None and re.fullmatch(
        rf"{re.escape(label)}-[0-9a-f]{{{NAME_DIGEST_LENGTH}}}", name
    ):
        return label
    return name


def running_container(docker: str, service: str) -> str:
    """A shell command that prints the container to exec into for ``service``: the
    newest healthy one labelled with it (``docker ps`` lists the newest first), else
    the newest running one, else the name itself. Healthy first: during a deploy, or
    after one whose new copy never turned healthy, the newest copy does not serve."""
    q = shlex.quote
    listed = f"{q(docker)} ps -q --filter {q(f'label={SERVICE_LABEL}={service}')}"
    return (
        f"{listed} --filter health=healthy | head -n 1 | grep . "
        f"|| {listed} --filter status=running | head -n 1 | grep . "
        f"|| echo {q(service)}"
    )
