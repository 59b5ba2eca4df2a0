"""Rules across keys and the app catalog, as the operator meets them: the local stack's
own rules, the volume names adopted from a hand-made server, and what a start-first
service may not have."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.checks import check_catalog
from components.config.errors import ConfigError
from components.model.app import App, Pull, Route, Service, ShellProbe
from tests.config.test_allowed import with_values
from tests.config.test_properties import run_parse
from tests.harness import local_config


def refusal(config: dict[str, Any]) -> str | None:
    """The lines the program stops with for ``config``, or None when it is accepted."""
    try:
        run_parse(config)
    except ConfigError as error:
        return str(error)
    return None


def test_the_local_stack_file_is_accepted_as_it_is() -> None:
    """On this machine's Docker (unix://) with its own database port (25432)."""
    assert refusal(local_config()) is None


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        (
            "dockerHost",
            "ssh://hemma",
            "hemma:dockerHost: the local stack runs on this machine's Docker, unix:///PATH "
            "(got 'ssh://hemma')",
        ),
        (
            "dockerHost",
            "tcp://127.0.0.1:2375",
            "hemma:dockerHost: the local stack runs on this machine's Docker, unix:///PATH "
            "(got 'tcp://127.0.0.1:2375')",
        ),
        (
            "postgres.hostPort",
            15432,
            "hemma:postgres.hostPort: 15432 is the hemma stack's database tunnel on this "
            "machine (postgres.tunnelPort): give the local stack its own, such as 25432",
        ),
    ],
    ids=["over ssh", "over tcp", "on the tunnel port"],
)
def test_what_the_local_stack_cannot_have_stops_it_with_its_line(
    key: str, value: Any, line: str
) -> None:
    config = local_config()
    *parents, last = key.split(".")
    target = config
    for part in parents:
        target[part] = target = {**target[part]}
    target[last] = value
    assert refusal(config) == line


def test_a_volume_name_is_given_for_an_app_volume_only() -> None:
    """``volumeNames`` keeps a hand-made volume's own name (``skriptoteket_artifacts``);
    a misspelt app volume would leave the real one to start empty."""
    known = {"skriptoteket-artifacts": "skriptoteket_artifacts"}
    assert refusal(with_values(volumeNames=known)) is None
    misspelt = refusal(with_values(volumeNames={"skriptoteket-artefacts": "x"}))
    assert misspelt is not None
    assert misspelt == (
        "hemma:volumeNames.skriptoteket-artefacts: no app volume of that name "
        "(did you mean skriptoteket-artifacts?)"
    )
    unknown = refusal(with_values(volumeNames={"zz": "x"}))
    assert unknown is not None
    assert unknown.startswith(
        "hemma:volumeNames.zz: no app volume of that name (known: alertmanager-data, "
    )


def start_first(backups: dict[str, str]) -> App:
    """A routed start-first service whose volume two copies may write at once."""
    return App(
        name="notes",
        services=(
            Service(
                name="web",
                container="notes-web",
                image=Pull("nginx:1.27"),
                networks=("hule-network",),
                route=Route("notes", 80),
                healthcheck=ShellProbe("true"),
                rollout="start-first",
                volumes={"notes-data": "/data"},
                overlap_volumes=("notes-data",),
                volume_backups=backups,
            ),
        ),
    )


def test_a_start_first_service_whose_backup_would_stop_it_is_refused() -> None:
    """The backup stops a container by its name, and a start-first container's name
    changes with each deploy: the backup would find nothing to stop."""
    assert check_catalog((start_first({"notes-data": "skip"}),)) == []
    assert check_catalog((start_first({"notes-data": "stop"}),)) == [
        "the notes app: notes-web is start-first but its backup stops it for volume "
        "'notes-data' (by a name that changes with each deploy)"
    ]
