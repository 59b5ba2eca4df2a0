"""Start-first containers as the operator's tools see them: named ``SERVICE-XXXXXXXXXXXX``
and labelled with their service, the same as components/model/rollout.py (which the
tools do not import; a test holds the two together)."""

from __future__ import annotations

import re
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
