"""What the providers read back from the server, in place of what was declared.

A provider's Read stores the server's canonical form of a value; when that
differs from the declared input, every preview shows a diff, and for a
property that forces replacement, every ``up`` replaces the resource. These
are the normalisations of the pinned providers that bear on this program,
each from its source:

- terraform-provider-docker (kreuzwerker v4.5.0, the line pulumi-docker 5.x
  wraps), ``resource_docker_container_funcs.go``:
  - health-check durations are stored as Go's ``time.Duration.String()``
    (lines 960-968): ``60s`` reads back as ``1m0s``;
  - ``log_opts`` is the daemon's stored config (line 952), into which the daemon
    merges its own ``log-opts`` (moby daemon/logs.go:199-205);
  - ``ports`` compare by internal port and protocol, in any order (schema
    DiffSuppressFunc), and an empty ``ip`` is stored as ``0.0.0.0`` (StateFunc);
  - ``restart`` is read as the policy's name; ``envs``, ``labels``, ``volumes``,
    ``uploads`` and ``networks_advanced`` are not read back (lines 786-898).
- terraform-provider-postgresql (the commit pulumi-postgresql 3.18 wraps): a
  role's password is not read back from a SCRAM hash; a database's template
  always reads as ``template0``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

CONTAINER = "docker:index/container:Container"
DURATION_FIELDS = ("interval", "timeout", "startPeriod", "startInterval")

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration string (``time.ParseDuration``) in seconds."""
    if text in ("0", ""):
        return 0.0
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            raise ValueError(f"not a duration: {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"not a duration: {text!r}")
    return total


def go_string(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole and fractional seconds."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if seconds >= scale:
                return f"{_trim(seconds / scale)}{unit}"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{int(hours)}h{int(minutes)}m{_trim(secs)}s"
    if minutes:
        return f"{int(minutes)}m{_trim(secs)}s"
    return f"{_trim(secs)}s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def canonical_duration(text: str) -> str:
    return go_string(parse_duration(text))


def _container(inputs: dict[str, Any], daemon_log_opts: Mapping[str, str]) -> dict[str, Any]:
    state = copy.deepcopy(inputs)
    health = state.get("healthcheck")
    if isinstance(health, dict):
        for field in DURATION_FIELDS:
            if isinstance(health.get(field), str):
                health[field] = canonical_duration(health[field])
    for port in state.get("ports", []) or []:
        if not port.get("ip"):
            port["ip"] = "0.0.0.0"
        port.setdefault("protocol", "tcp")
    if "logOpts" in state and state.get("logDriver", "json-file") == "json-file":
        state["logOpts"] = {**daemon_log_opts, **state["logOpts"]}
    return state


READERS: dict[str, Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]]] = {
    CONTAINER: _container,
}


def read_back(
    type_: str, inputs: Mapping[str, Any], daemon_log_opts: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The inputs as the provider will have stored them after create and refresh."""
    reader = READERS.get(type_)
    plain = copy.deepcopy(dict(inputs))
    return reader(plain, daemon_log_opts or {}) if reader else plain


def _ports_key(port: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        float(port.get("internal", 0)),
        str(port.get("protocol", "tcp")),
        str(port.get("ip")),
        float(port.get("external", 0)),
    )


def comparable(type_: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """A value with the orders the provider ignores sorted away (ports, envs)."""
    result = copy.deepcopy(dict(value))
    if type_ == CONTAINER:
        if "ports" in result:
            for port in result["ports"]:
                port.setdefault("protocol", "tcp")
            result["ports"] = sorted(result["ports"], key=_ports_key)
        if "envs" in result:
            result["envs"] = sorted(result["envs"])
    return result


def differences(
    type_: str, stored: Mapping[str, Any], declared: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Property -> (stored, declared) for every property a preview would show as changed."""
    old, new = comparable(type_, stored), comparable(type_, declared)
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if key in new and old.get(key) != new.get(key)
    }
