"""systemd ``OnCalendar=`` expressions, validated without systemd.

The operator's machine may have no systemd, and a timer with a bad schedule is
only noticed on Hemma when ``systemctl`` refuses it. This accepts the forms the
runbooks and operators use (the shorthands, ``[WEEKDAYS] [[YEAR-]MONTH-DAY]
[HH:MM[:SS]] [TIMEZONE]`` with lists, ranges and repetitions) and rejects what
systemd 252 rejects; the tests cross-check it against ``systemd-analyze
calendar``. Forms outside that (``@EPOCH``) are rejected as unsupported.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import cache

SHORTHANDS = frozenset(
    {
        "minutely",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "quarterly",
        "semiannually",
        "yearly",
        "annually",
    }
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = {
    **{day: index for index, day in enumerate(_WEEKDAYS)},
    **{
        name: index
        for index, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_NUMBER = re.compile(r"^[0-9]+$")
_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


class CalendarError(ValueError):
    pass


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _weekdays(token: str) -> None:
    for item in token.split(","):
        days = item.split("..")
        if len(days) > 2 or any(day.lower() not in _WEEKDAY_NAMES for day in days):
            raise CalendarError(f"bad weekday {item!r}")
        if len(days) == 2 and _WEEKDAY_NAMES[days[0].lower()] > _WEEKDAY_NAMES[days[1].lower()]:
            raise CalendarError(f"weekday range {item!r} runs backwards")


def _component(text: str, low: int, high: int, what: str, seconds: bool = False) -> None:
    """One field: ``*``, or a comma list of N, N..M, N/STEP or N..M/STEP."""
    if text == "*":
        return
    number = _SECONDS if seconds else _NUMBER
    for item in text.split(","):
        value, _, step = item.partition("/")
        if step and (not _NUMBER.match(step) or int(step) == 0):
            raise CalendarError(f"bad repetition in {what} {item!r}")
        bounds = value.split("..")
        if len(bounds) > 2 or not all(number.match(b) for b in bounds):
            raise CalendarError(f"bad {what} {item!r}")
        numbers = [float(b) for b in bounds]
        if any(not low <= n < high + 1 for n in numbers):
            raise CalendarError(f"{what} {item!r} is out of range")
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise CalendarError(f"{what} range {item!r} runs backwards")


def _date(token: str) -> None:
    last_day = "~" in token
    parts = re.split(r"[-~]", token)
    if last_day and token.count("~") != 1:
        raise CalendarError(f"bad date {token!r}")
    if len(parts) == 3:
        year, month, day = parts
        if year != "*":
            # systemd reads a two-digit year as 19YY/20YY; four digits must be 1970-2199
            four_digit = any(len(b) == 4 for b in re.split(r"[,/]|\.\.", year))
            _component(year, 1970 if four_digit else 0, 2199 if four_digit else 99, "year")
    elif len(parts) == 2:
        month, day = parts
    else:
        raise CalendarError(f"bad date {token!r}")
    _component(month, 1, 12, "month")
    _component(day, 1, 31, "day")


def _time(token: str) -> None:
    parts = token.split(":")
    if len(parts) not in (2, 3):
        raise CalendarError(f"bad time {token!r}")
    _component(parts[0], 0, 23, "hour")
    _component(parts[1], 0, 59, "minute")
    if len(parts) == 3:
        _component(parts[2], 0, 59, "second", seconds=True)


def validate(expression: str) -> str:
    """Return ``expression`` unchanged, or raise CalendarError saying what is wrong."""
    tokens = expression.split()
    if not tokens:
        raise CalendarError("empty schedule")
    if len(tokens) > 1 and (tokens[-1] == "UTC" or tokens[-1] in _zones()):
        tokens = tokens[:-1]
    if len(tokens) == 1 and tokens[0].lower() in SHORTHANDS:
        return expression
    if tokens[0][:1].isalpha():
        _weekdays(tokens.pop(0))
    if tokens and ("-" in tokens[0] or "~" in tokens[0]):
        _date(tokens.pop(0))
    if tokens and ":" in tokens[0]:
        _time(tokens.pop(0))
    if tokens:
        raise CalendarError(f"cannot read {' '.join(tokens)!r}")
    return expression
