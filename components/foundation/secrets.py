"""Generated secrets: long, URL-safe, stable across runs, and always secret Outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random as random

PASSWORD_LENGTH = 40


def generated_password(name: str, parent: pulumi.Resource | None) -> random.RandomPassword:
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


def _holds(value: Any, secret_values: frozenset[str]) -> bool:
    if isinstance(value, str):
        return any(secret in value for secret in secret_values)
    if isinstance(value, dict):
        return any(_holds(k, secret_values) or _holds(v, secret_values) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds(v, secret_values) for v in value)
    if hasattr(value, "__dict__"):
        return any(_holds(v, secret_values) for v in vars(value).values())
    return False


def secret_where_tainted(value: Any, secret_values: frozenset[str]) -> Any:
    """``value`` as a secret Output if it holds any of ``secret_values``, else unchanged.

    It resolves the value first, so a config value that reached a command string, an
    env entry or an upload through any number of Outputs is caught where it lands.
    """
    if not secret_values:
        return value
    return pulumi.Output.from_input(value).apply(
        lambda resolved: (
            pulumi.Output.secret(resolved) if _holds(resolved, secret_values) else resolved
        )
    )


def keep_config_secrets(secret_values: frozenset[str]) -> pulumi.ResourceOptions:
    """Options that mark, on a resource and every child of it, each input that holds a
    value of a config key the operator set with ``--secret``: such a value is treated
    as a secret wherever it flows. Every top-level resource of the stack takes them."""
    if not secret_values:
        return pulumi.ResourceOptions()

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        props = {key: secret_where_tainted(v, secret_values) for key, v in args.props.items()}
        return pulumi.ResourceTransformationResult(props, args.opts)

    return pulumi.ResourceOptions(transformations=[transform])
