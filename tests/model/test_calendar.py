"""The OnCalendar validator agrees with systemd on every expression in the table."""

from __future__ import annotations

import subprocess

import pytest

from components.model.calendar import CalendarError, validate

CALENDAR_TABLE = [
    ("hourly", True),
    ("daily", True),
    ("Weekly", True),
    ("semiannually", True),
    ("*-*-* 03:15:00", True),
    ("Mon..Fri 08:00", True),
    ("Sat,Sun *-*-* 10:00", True),
    ("*:0/15", True),
    ("00/6:00", True),
    ("2026-12-24", True),
    ("26-12-24 18:00", True),
    ("*-*-01 00:00:00 UTC", True),
    ("daily Europe/Stockholm", True),
    ("*-*~1", True),
    ("Fri *-*-1..7 18:00", True),
    ("*-*-* 03:15:00.5", True),
    ("*-1..3-1", True),
    ("*-*-1,15 12:00", True),
    ("Monday 10:00", True),
    ("", False),
    ("hourlyy", False),
    ("dayly", False),
    ("*-*-* 25:00", False),
    ("*-13-01", False),
    ("*-*-32", False),
    ("12:60", False),
    ("Mon..Fry", False),
    ("Wed..Mon", False),
    ("Mon,,Tue 10:00", False),
    ("*-*-* 5..3:00", False),
    ("*-*-* 0/0:00", False),
    ("*:*/15", False),
    ("1969-01-01", False),
    ("12:00 Mars/Olympus", False),
    ("*-*-* 10", False),
    ("10:00:00:00", False),
]


@pytest.mark.tools
@pytest.mark.parametrize(("expression", "valid"), CALENDAR_TABLE)
def test_the_schedule_validator_agrees_with_systemd(expression: str, valid: bool) -> None:
    try:
        validate(expression)
        ours = True
    except CalendarError:
        ours = False
    systemd = subprocess.run(
        ["systemd-analyze", "calendar", expression], capture_output=True, text=True
    )
    assert ours is valid
    assert (systemd.returncode == 0) is valid, systemd.stderr
