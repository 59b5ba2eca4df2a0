"""Adopting what the hand-made server already runs, instead of recreating it.

``hemma:import`` maps ``KIND/NAME`` (``network/hule-network``,
``volume/shared-postgres-data``, ``database/skriptoteket``, ``role/huleedu_user``)
to the existing object's ID. Pulumi then imports the object on the next
``pulumi up`` rather than creating it.

What the engine does with it (pulumi pkg/resource/deploy step_generator.go): the
import reads the object, and normal diffing continues in the same run. An input
that differs and can be updated in place is updated right after the import (a
role's password, a database's owner): the first ``up`` brings every adopted
role and database to the declared model, before any app container that uses
them is created. A difference that would replace the object stops the run while
the import is listed ("previously-imported resources that still specify an ID
may not be replaced"), so nothing that holds data is recreated.

Nothing is ignored while importing: an ignored password would leave the roles on
their old passwords while the new containers start with the generated ones.
Properties a hand-made object differs on for good (a volume's or a network's
compose labels) are ignored by the resources themselves, always.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

KINDS = ("network", "volume", "database", "role")


def import_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def adopt(import_ids: Mapping[str, str], kind: str, name: str) -> pulumi.ResourceOptions:
    """Options that import ``KIND/NAME`` when the operator asked for it."""
    existing = import_ids.get(import_key(kind, name))
    if existing is None:
        return pulumi.ResourceOptions()
    return pulumi.ResourceOptions(import_=existing)
