"""Adopting what the hand-made server already runs, instead of recreating it.

``hemma:import`` maps ``KIND/NAME`` (``network/hule-network``,
``volume/shared-postgres-data``, ``database/skriptoteket``, ``role/huleedu_user``)
to the existing object's ID. Pulumi then imports the object on the next
``pulumi up`` rather than creating it. An import whose declared inputs differ
from the real object fails without touching it, so nothing is lost; the few
properties that a hand-made object is known to differ on (a volume's compose
labels, a role's password, a database's owner) are ignored while it is
imported and converge on the ``pulumi up`` after the key is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

KINDS = ("network", "volume", "database", "role")


def import_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def adopt(
    import_ids: Mapping[str, str],
    kind: str,
    name: str,
    differs_on: Sequence[str] = (),
) -> pulumi.ResourceOptions:
    """Options that import ``KIND/NAME`` when the operator asked for it."""
    existing = import_ids.get(import_key(kind, name))
    if existing is None:
        return pulumi.ResourceOptions()
    return pulumi.ResourceOptions(import_=existing, ignore_changes=list(differs_on))
