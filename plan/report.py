"""The plan as a person reads it, from the plan document alone (so it holds no secret
the document does not): routes, containers, databases, host units, backups and
what is public."""

from __future__ import annotations

import ipaddress
import textwrap
from collections.abc import Mapping
from typing import Any

from components.config.sources import NO_CHECKOUT
from components.model.rollout import declared_service
from plan.document import CONTAINER, is_masked

REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
LOCAL_COMMAND = "command:local:Command"
INDENT = "  "
WIDTH = 100


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _table(rows: list[list[str]], indent: str = INDENT) -> list[str]:
    """Rows as left-aligned columns."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _address(address: str, port: Any) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) or "(none)"
    return str(value)


def _wrapped(head: str, text: str) -> list[str]:
    return textwrap.wrap(
        text, width=WIDTH, initial_indent=head, subsequent_indent=" " * len(head)
    ) or [head.rstrip()]


def _resource_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _service(container: Mapping[str, Any]) -> str:
    """A container's service name (a start-first one's own name carries a digest)."""
    return declared_service(container["inputs"]) or str(container["name"])


class Report:
    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.plan = plan
        self.outputs: Mapping[str, Any] = plan.get("outputs", {})
        self.by_urn = {r["urn"]: r for r in plan.get("resources", [])}
        self.containers = {
            _service(r): r for r in plan.get("resources", []) if r["type"] == CONTAINER
        }

    def output(self, name: str) -> Any:
        value = self.outputs.get(name)
        return None if is_masked(value) else value

    # --- sections -------------------------------------------------------------------------

    def header(self) -> list[str]:
        plan = self.plan
        lines = [
            f"hemma plan: stack {plan['stack']} (project {plan['project']}), "
            f"{len(plan.get('resources', []))} resources",
            "Offline: the program ran under the Pulumi SDK's mocks; nothing was read from "
            "or sent to Hemma.",
        ]
        if plan.get("placeholders"):
            config = plan.get("config", {})
            named = [
                f"{key} (secret)" if is_masked(config.get(key)) else key
                for key in plan["placeholders"]
            ]
            lines.append("Placeholders for the values only the operator holds: " + ", ".join(named))
        if plan.get("leftUnset"):
            lines.append(
                "Left at their defaults (objects only the operator holds): "
                + ", ".join(plan["leftUnset"])
            )
        lines.append("Secrets show as [secret:HASH], a hash of the value, never the value.")
        absent = sorted(
            r["name"]
            for r in plan.get("resources", [])
            if r["type"] == LOCAL_COMMAND and r["inputs"].get("triggers") == [NO_CHECKOUT]
        )
        if absent:
            lines.append(
                f"{len(absent)} image builds have no source checkout here and carry a "
                "placeholder digest (000...)."
            )
        for warning in plan.get("warnings", []):
            lines.append(f"WARNING: {warning}")
        return lines

    def routes(self) -> list[str]:
        routes = self.output("routes")
        if not isinstance(routes, dict):
            return ["Routes: [secret or absent]"]
        rows = [
            [
                host,
                "->",
                f"{route.get('container')}:{route.get('port')}",
                "basic auth" if route.get("basicAuth") else "",
            ]
            for host, route in routes.items()
        ]
        checks = self.output("healthChecks")
        public = checks.get("public") if isinstance(checks, dict) else None
        urls = [u for u in (public or {}).values() if isinstance(u, str)]
        scheme = "HTTP" if urls and all(u.startswith("http://") for u in urls) else "HTTPS"
        return [f"Routes (nginx-proxy, {scheme}):", *_table(rows)]

    def image(self, container: Mapping[str, Any]) -> str:
        """What a container runs: the pulled reference, or the tag a build command makes."""
        image = container["inputs"].get("image")
        options = container["options"]
        for urn in options.get("propertyDependencies", {}).get("image", []):
            source = self.by_urn.get(urn)
            if source is not None and source["type"] == REMOTE_IMAGE:
                return f"{source['inputs'].get('name')} (pulled)"
        for urn in options.get("dependencies", []):
            source = self.by_urn.get(urn)
            if source is None or source["type"] != LOCAL_COMMAND:
                continue
            create = source["inputs"].get("create")
            if isinstance(image, str) and isinstance(create, str) and image in create:
                absent = source["inputs"].get("triggers") == [NO_CHECKOUT]
                return f"{image} (built{', no checkout here' if absent else ''})"
        return str(image)

    def container_lines(self, name: str) -> list[str]:
        container = self.containers.get(name)
        if container is None:
            return [f"{INDENT * 2}{name}: not declared"]
        inputs = container["inputs"]
        networks = []
        for network in inputs.get("networksAdvanced") or []:
            aliases = network.get("aliases") or []
            suffix = f" (as {', '.join(aliases)})" if aliases else ""
            networks.append(f"{network.get('name')}{suffix}")
        if inputs.get("networkMode") and not networks:
            networks.append(f"network mode {inputs['networkMode']}")
        local = [
            f"{_address(str(port.get('ip')), port.get('external'))}->{port.get('internal')}"
            for port in inputs.get("ports") or []
            if _is_loopback(str(port.get("ip") or ""))
        ]
        lines = [f"{INDENT * 2}{name}"]
        if inputs.get("name") != name:
            lines.append(f"{INDENT * 3}start-first, as {inputs.get('name')}")
        placement = self.output("placement")
        machine = placement.get(name) if isinstance(placement, dict) else None
        if machine not in (None, "hemma"):
            lines.append(f"{INDENT * 3}machine   {machine}")
        lines += [
            f"{INDENT * 3}image     {self.image(container)}",
            f"{INDENT * 3}networks  {', '.join(networks) or '(none)'}",
        ]
        if local:
            lines.append(f"{INDENT * 3}localhost {', '.join(local)}")
        return lines

    def containers_section(self) -> list[str]:
        lines = ["Containers:"]
        listed: set[str] = set()
        by_app = self.output("containers")
        groups: dict[str, list[str]] = {}
        if isinstance(by_app, dict):
            for app, names in by_app.items():
                groups[app] = list(names)
                listed.update(names)
        for name, container in self.containers.items():
            if name not in listed:
                owner = _resource_name(container["parent"]) if container["parent"] else "stack"
                groups.setdefault(owner, []).append(name)
        for group, names in groups.items():
            lines.append(f"{INDENT}{group}")
            for name in names:
                lines += self.container_lines(name)
        return lines

    def databases(self) -> list[str]:
        databases = self.output("appDatabases")
        if not isinstance(databases, dict):
            return ["Databases: [secret or absent]"]
        lines = ["Databases and roles (shared-postgres):"]
        for app, entry in databases.items():
            names = list(entry.get("databases") or [])
            head = f"{INDENT}{app}: role {entry.get('role')} owns {len(names)}: "
            lines += _wrapped(head, ", ".join(names))
        return lines

    def units(self) -> list[str]:
        units = self.output("hostUnits")
        if not isinstance(units, dict):
            return ["Host units: [secret or absent]"]
        rows = [
            [
                unit,
                "->",
                str(entry.get("schedule") or "always running")
                + (f" (on {entry['host']})" if entry.get("host", "hemma") != "hemma" else ""),
            ]
            for unit, entry in units.items()
        ]
        return ["Host units (systemd, installed over SSH):", *(_table(rows) or [f"{INDENT}none"])]

    def backups(self) -> list[str]:
        backups = self.outputs.get("backups")
        lines = ["Backups:"]
        if not isinstance(backups, dict):
            return [*lines, f"{INDENT}{backups}"]
        for key, value in backups.items():
            lines += _wrapped(f"{INDENT}{key}: ", _text(value))
        return lines

    def public(self) -> list[str]:
        rows = []
        for name, container in self.containers.items():
            inputs = container["inputs"]
            for port in inputs.get("ports") or []:
                address = str(port.get("ip") or "0.0.0.0")
                if not _is_loopback(address):
                    protocol = port.get("protocol") or "tcp"
                    published = _address(address, port.get("external"))
                    rows.append([name, f"{published}->{port.get('internal')}/{protocol}"])
            if inputs.get("networkMode") == "host":
                rows.append([name, "host network: every port it listens on"])
            if inputs.get("publishAllPorts"):
                rows.append([name, "publishAllPorts: every exposed port"])
        return [
            "Public (published on an address other than loopback):",
            *(_table(rows) or [f"{INDENT}nothing"]),
        ]


def render(plan: Mapping[str, Any]) -> str:
    report = Report(plan)
    sections = [
        report.header(),
        report.routes(),
        report.containers_section(),
        report.databases(),
        report.units(),
        report.backups(),
        report.public(),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
