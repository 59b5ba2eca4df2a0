"""What a change costs the public sites, read from the two plans before ``up``.

A container is replaced delete-first (``deleteBeforeReplace``): the old one stops,
then the new one is created and started, and nginx-proxy routes to it once it is
healthy. A routed container's hosts are down from its stop until the new one
answers: at least the new one's first health check (Docker runs it one
``interval`` after the start), at most its stop grace plus the provider's
``wait_timeout``. A start-first container (``deleteBeforeReplace`` false, named
``SERVICE-DIGEST``) starts beside the old one, which serves until the new one is
healthy and goes at the end of the update: no downtime. nginx-proxy serves every
host, so its replacement takes all of them down. Its per-host files reach it
through its reload step, which costs no downtime: nginx's reload is graceful.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from components.model.rollout import declared_service
from plan.diff import DELETE, Change
from plan.replaces import REPLACE

CONTAINER = "docker:index/container:Container"
PROXY_LABEL = "com.github.nginx-proxy.nginx"
RELOAD_URN = "hemma:proxy:ProxyStack$command:"
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?")


def seconds(duration: str) -> int:
    """Go's ``Duration.String()`` form, whole seconds: ``1m0s`` is 60."""
    match = _DURATION.fullmatch(duration or "")
    if not match or not duration:
        return 0
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


def _labels(inputs: Mapping[str, Any]) -> dict[str, str]:
    items = inputs.get("labels")
    return {i["label"]: i["value"] for i in items} if isinstance(items, list) else {}


def _window(inputs: Mapping[str, Any]) -> tuple[int, int]:
    """(at least, at most) seconds from the old container's stop to the new one's answer."""
    found = inputs.get("healthcheck")
    health: Mapping[str, Any] = found if isinstance(found, dict) else {}
    first = seconds(str(health.get("interval", ""))) or 1
    grace = inputs.get("destroyGraceSeconds")
    wait = inputs.get("waitTimeout")
    grace = grace if isinstance(grace, int) else 0
    wait = wait if isinstance(wait, int) else 60
    return first, grace + wait


def _hosts_by_container(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    routes = plan.get("outputs", {}).get("routes")
    found: dict[str, list[str]] = {}
    if isinstance(routes, dict):
        for host, route in routes.items():
            if isinstance(route, dict) and isinstance(route.get("container"), str):
                found.setdefault(route["container"], []).append(host)
    return found


def costs(
    changes: Iterable[Change], old_plan: Mapping[str, Any], new_plan: Mapping[str, Any]
) -> list[str]:
    """One line per change that takes a public host down or reloads the proxy, then a
    summary line; nothing when no change touches the edge."""
    resources = {r["urn"]: r for plan in (old_plan, new_plan) for r in plan.get("resources", [])}
    hosts: dict[str, set[str]] = {}
    for plan in (old_plan, new_plan):
        for container, found in _hosts_by_container(plan).items():
            hosts.setdefault(container, set()).update(found)
    every_host = sorted({h for found in hosts.values() for h in found})
    public = {h for found in _hosts_by_container(new_plan).values() for h in found}
    lines: list[str] = []
    down: dict[str, tuple[int, int]] = {}
    for change in changes:
        inputs = resources.get(change.urn, {}).get("inputs", {})
        if change.type != CONTAINER and RELOAD_URN in change.urn and change.action == REPLACE:
            lines.append(
                f"reload {change.name}: nginx-proxy reloads its per-host files, no downtime"
            )
            continue
        if change.type != CONTAINER or change.action not in (REPLACE, DELETE):
            continue
        name = declared_service(inputs) or change.name
        least, most = _window(inputs)
        served = every_host if PROXY_LABEL in _labels(inputs) else sorted(hosts.get(name, []))
        if not served:
            continue
        options = resources.get(change.urn, {}).get("options", {})
        if change.action == DELETE:
            lines.append(f"!! delete {name}: {', '.join(served)} stop being served")
            least, most = 0, 0
        elif options.get("deleteBeforeReplace") is False:
            wait = inputs.get("waitTimeout")
            lines.append(
                f"replace {name} start-first (no downtime): the old one serves "
                f"{', '.join(served)} until the new one is healthy"
                + (f" (up waits up to {wait} s)" if isinstance(wait, int) else "")
            )
            continue
        else:
            lines.append(
                f"!! replace {name} delete-first (down from stop to healthy): "
                f"{', '.join(served)} down, {least}-{most} s"
            )
        for host in served:
            low, high = down.get(host, (0, 0))
            down[host] = (max(low, least), max(high, most))
    if down:
        least = max(low for low, _ in down.values())
        most = max(high for _, high in down.values())
        others = len(public - set(down))
        lines.append(
            f"downtime: {', '.join(sorted(down))} go down, for {least}-{most} s; "
            f"the other {others} public hosts stay up"
        )
    elif lines:
        lines.append(f"downtime: none; all {len(public)} public hosts stay up")
    return lines
