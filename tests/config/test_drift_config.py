"""``hemma:drift``: the drift check's schedule and how old its last success may grow."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config.reading import parse
from tests.harness import OPERATOR_SECRETS, as_cli_value, run_expecting_error, site_config


def with_drift(drift: Any) -> dict[str, Any]:
    config = copy.deepcopy(site_config())
    config["drift"] = drift
    return config


def test_the_defaults_are_hourly_and_thirty_six_hours() -> None:
    config = site_config()
    assert config["drift"] == {"schedule": "hourly", "staleAfterHours": 36}, "Pulumi.hemma.yaml"
    del config["drift"]
    parsed = parse({k: as_cli_value(v) for k, v in config.items()}, OPERATOR_SECRETS)
    assert parsed.drift.schedule == "hourly"
    assert parsed.drift.stale_after_hours == 36


def test_the_values_set_are_the_values_read() -> None:
    config = with_drift({"schedule": "*:0/15", "staleAfterHours": 336})
    parsed = parse({k: as_cli_value(v) for k, v in config.items()}, OPERATOR_SECRETS)
    assert (parsed.drift.schedule, parsed.drift.stale_after_hours) == ("*:0/15", 336)
    one = with_drift({"staleAfterHours": 1})
    values = {k: as_cli_value(v) for k, v in one.items()}
    assert parse(values, OPERATOR_SECRETS).drift.stale_after_hours == 1


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (
            {"schedule": "hourlyy"},
            "hemma:drift.schedule: not a systemd OnCalendar expression: "
            "bad weekday 'hourlyy' (got 'hourlyy')",
        ),
        ({"staleAfterHours": 0}, "hemma:drift.staleAfterHours: must be at least 1 (got 0)"),
        (
            {"staleAfterHours": 337},
            "hemma:drift.staleAfterHours: must be at most 336 (got 337)",
        ),
        (
            {"staleAfterHours": True},
            "hemma:drift.staleAfterHours: must be a number, not true or false (got True)",
        ),
        (
            {"staleAfterHours": 1.5},
            "hemma:drift.staleAfterHours: must be an integer (got 1.5)",
        ),
        (
            {"schedul": "daily"},
            "hemma:drift.schedul: unknown config key (did you mean hemma:drift.schedule?)",
        ),
        (
            {"enabled": False},
            "hemma:drift.enabled: unknown config key",
        ),
    ],
    ids=["schedule", "zero hours", "past two weeks", "boolean", "fraction", "typo", "unknown"],
)
def test_a_bad_value_stops_the_program_naming_the_key(drift: Any, expected: str) -> None:
    message, program = run_expecting_error(with_drift(drift))
    assert message == expected
    assert program.declared == []
