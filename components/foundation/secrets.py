"""Generated secrets: long, URL-safe, stable across runs, and always secret Outputs."""

from __future__ import annotations

import pulumi
import pulumi_random as random

PASSWORD_LENGTH = 40


def generated_password(name: str, parent: pulumi.Resource) -> random.RandomPassword:
    """A password safe inside a URL or an env file: letters and digits only.

    It has no keepers, so it is generated once and kept in state until the
    resource is replaced on purpose.
    """
    return random.RandomPassword(
        name,
        length=PASSWORD_LENGTH,
        special=False,
        min_lower=1,
        min_upper=1,
        min_numeric=1,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def secret_value(password: random.RandomPassword) -> pulumi.Output[str]:
    """The password's value, marked secret by the program itself, not only by the engine."""
    return pulumi.Output.secret(password.result)
