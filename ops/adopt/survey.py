"""The survey: what Hemma runs against what the plan declares, and the config that
adopts it. It prints ``scripts/pulumi config set`` commands and runs none of them.

A declared volume is matched to the volume Hemma has by what the running
container of the same name mounts at the same path (``shared-postgres`` mounting
``infrastructure_postgres_data`` at ``/var/lib/postgresql/data``); failing that,
by name, compose's project prefix and ``-``/``_`` aside.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from ops.adopt.compare import compare
from ops.adopt.observe import COMPOSE_VOLUME, SUFFIX, Observed
from ops.adopt.plan import Plan, Volume

CONFIG_SET = ("scripts/pulumi", "config", "set", "--path")


@dataclass
class Survey:
    lines: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    done: list[list[str]] = field(default_factory=list)
    """Commands whose value the plan's config already holds."""
    stops: list[str] = field(default_factory=list)
    """What stops the adoption until it is dealt with (swap refuses the same)."""

    def note(self, text: str = "") -> None:
        self.lines.append(text)

    def set(self, plan: Plan, path: str, value: str) -> None:
        command = [*CONFIG_SET, path, value]
        current = _current(plan, path)
        (self.done if current == value else self.commands).append(command)

    def text(self) -> str:
        out = list(self.lines)
        out += ["", "Config to set (printed, not run; then `scripts/plan --json plan.json` again):"]
        out += [shlex.join(c) for c in self.commands] or ["  (nothing: the config adopts it all)"]
        out += [f"# already set: {shlex.join(c)}" for c in self.done]
        return "\n".join(out) + "\n"


def _current(plan: Plan, path: str) -> str | None:
    if path.startswith('import["'):
        return plan.imports.get(path[len('import["') : -2])
    if path.startswith('volumeNames["'):
        return plan.volume_names.get(path[len('volumeNames["') : -2])
    section, _, key = path.partition(".")
    value = plan.config.get(section)
    return str(value[key]) if isinstance(value, dict) and key in value else None


def _norm(text: str) -> str:
    return text.lower().replace("-", "_")


def _by_name(volume: Volume, observed: Observed) -> list[str]:
    exact = [v.name for v in observed.volumes if v.name == volume.docker_name]
    if exact:
        return exact
    wanted = _norm(volume.docker_name)
    return [
        v.name
        for v in observed.volumes
        if wanted in {_norm(v.name), _norm(v.labels.get(COMPOSE_VOLUME, "-"))}
        or _norm(v.name).endswith("_" + wanted)
    ]


def match_volumes(plan: Plan, observed: Observed, survey: Survey) -> dict[str, str]:
    """Declared docker name -> the volume Hemma holds its data in."""
    matched: dict[str, str] = {}
    for volume in plan.volumes():
        by_mount: set[str] = set()
        for declared in plan.containers():
            there = observed.container(declared.name)
            for volume_name, path in declared.mounts:
                if volume_name != volume.docker_name or there is None:
                    continue
                for mount in there.mounts:
                    if mount.destination != path:
                        continue
                    if mount.type == "volume":
                        by_mount.add(mount.name)
                    else:
                        survey.note(
                            f"  WARNING {declared.name} keeps {path} in a {mount.type} mount "
                            f"({mount.source}), not a volume: copy it into {volume.docker_name} "
                            "before the swap, or it stays behind"
                        )
        candidates = sorted(by_mount) or _by_name(volume, observed)
        if len(candidates) == 1:
            matched[volume.docker_name] = candidates[0]
        elif candidates:
            survey.note(
                f"  AMBIGUOUS {volume.docker_name}: Hemma has {', '.join(candidates)}; set "
                f"{volume.config_key or 'its name'} and its import by hand"
            )
    seen: dict[str, list[str]] = {}
    for declared_name, real in matched.items():
        seen.setdefault(real, []).append(declared_name)
    for real, names in seen.items():
        if len(names) > 1:
            survey.note(f"  CONFLICT {real} matches {', '.join(names)}: none of them is set")
            for n in names:
                del matched[n]
    return matched


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def survey(plan: Plan, observed: Observed, target: str) -> Survey:
    report = Survey()
    report.note(f"Hemma ({target}) against {plan.source}")
    declared = {c.name for c in plan.containers()}
    here = {c.name: c for c in observed.containers}
    swapped = [here[n] for n in sorted(declared & set(here))]
    report.note("")
    report.note("Containers the stack declares that Hemma runs now (swap stops and keeps them):")
    rows = [["NAME", "STATE", "RESTART", "COMPOSE PROJECT"]]
    rows += [[c.name, c.state, c.restart, c.project or "-"] for c in swapped]
    report.lines += _table(rows) if swapped else ["  (none)"]
    new = sorted(declared - set(here))
    report.note(f"Declared, not on Hemma (created by up): {', '.join(new) or '(none)'}")
    others = sorted(n for n in set(here) - declared if not n.endswith(SUFFIX))
    report.note(f"On Hemma, not declared (left alone): {', '.join(others) or '(none)'}")
    leftover = sorted(n for n in here if n.endswith(SUFFIX))
    if leftover:
        report.note(f"  NOTE an earlier swap left {', '.join(leftover)}")

    report.note("")
    report.note("What runs against what replaces it (image, mounts, ports, data):")
    findings = compare(plan, observed)
    report.stops = findings.stops
    for text in findings.stops:
        report.note(f"  STOP {text}")
    for text in findings.notes:
        report.note(f"  {text}")
    if not findings.stops and not findings.notes:
        report.note("  (the same images, mounts and ports)")

    report.note("")
    report.note("Volumes:")
    matched = match_volumes(plan, observed, report)
    for volume in plan.volumes():
        real = matched.get(volume.docker_name)
        if real is None:
            report.note(f"  {volume.docker_name}: not on Hemma: up creates it EMPTY")
            continue
        report.note(f"  {volume.docker_name}: Hemma's {real}")
        if real != volume.docker_name and volume.config_key:
            report.set(plan, volume.config_key, real)
        elif real != volume.docker_name:
            report.note(f"  WARNING no config key names {volume.docker_name}: it is not adopted")
            continue
        report.set(plan, f'import["volume/{real}"]', real)
        users = sorted(
            c.name
            for c in observed.containers
            if c.name not in declared and any(m.name == real for m in c.mounts)
        )
        if users:
            report.note(
                f"  WARNING {', '.join(users)} (not declared) also mount {real}: swap leaves "
                f"them alone, and refuses while one that mounts {plan.postgres_container}'s "
                "data could start"
            )

    report.note("")
    networks = {n.name: n for n in observed.networks}
    for network in plan.networks():
        if network in networks:
            report.note(f"Network {network}: on Hemma, imported")
            report.set(plan, f'import["network/{network}"]', networks[network].id)
        else:
            report.note(f"Network {network}: not on Hemma: up creates it")

    report.note("")
    _postgres(plan, observed, report)
    return report


def _postgres(plan: Plan, observed: Observed, report: Survey) -> None:
    catalog = observed.catalog
    if catalog is None:
        report.note(f"PostgreSQL: {observed.catalog_problem}")
        return
    major = catalog.version // 10000
    report.note(f"PostgreSQL in {plan.postgres_container}: server {major} ({catalog.version})")
    declared_major = re.search(r":(\d+)", plan.postgres_image)
    if declared_major and int(declared_major[1]) != major:
        report.note(
            f"  WARNING the stack runs {plan.postgres_image}: a data directory of PostgreSQL "
            f"{major} does not start on {declared_major[1]} (dump and restore instead)"
        )
    databases = plan.databases()
    for database in sorted(databases):
        if database in catalog.databases:
            report.set(plan, f'import["database/{database}"]', database)
    present = sorted(set(databases) & set(catalog.databases))
    report.note(f"  databases imported: {', '.join(present) or '(none)'}")
    absent = sorted(set(databases) - set(catalog.databases))
    report.note(f"  databases created by up: {', '.join(absent) or '(none)'}")
    extra = sorted(set(catalog.databases) - set(databases) - {"postgres"})
    report.note(f"  databases left alone: {', '.join(extra) or '(none)'}")
    for role in sorted(plan.roles()):
        if role not in catalog.roles:
            report.note(f"  role {role}: created by up")
            continue
        report.note(f"  role {role}: imported; up sets its generated password")
        if catalog.roles[role]:
            report.note(f"  WARNING role {role} is a superuser: up takes that away")
        report.set(plan, f'import["role/{role}"]', role)
