"""What ``pulumi up`` would do to go from one plan to another, and why.

Two plans (``plan.document``) are matched by URN, and by alias where a
resource was renamed or moved. A resource only in the new plan is created (or
imported, with an import ID); one only in the old plan is deleted; one in both
is compared input by input after ``readback.comparable`` (so an order the
provider ignores is no change), without the inputs its ``ignoreChanges``
names, and ``replaces.classify`` says whether the change replaces it.

A replacement gives a resource a new ID and, for a generated secret, a new
value; a dependent input that holds either (by the request's property
dependencies) changes with it, as the engine would find after the replacement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plan.details import describe, shown
from plan.document import is_masked
from plan.readback import comparable
from plan.replaces import REPLACE, classify

CREATE = "create"
IMPORT = "import"
UPDATE = "update"
DELETE = "delete"
OPTIONS = "options"
ORDER = {REPLACE: 0, UPDATE: 1, CREATE: 2, IMPORT: 2, DELETE: 3, OPTIONS: 4}
PROTECTED = "(PROTECTED: up will refuse)"
REGENERATED = frozenset(
    {"random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"}
)
"""Types whose replacement yields a new value, not only a new ID."""
WATCHED_OPTIONS = (
    "protect",
    "retainOnDelete",
    "deleteBeforeReplace",
    "ignoreChanges",
    "replaceOnChanges",
    "deletedWith",
)
"""Options the engine keeps in state; ``dependencies`` only order the steps."""
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class Change:
    action: str
    name: str
    type: str
    urn: str
    properties: list[str] = field(default_factory=list)
    """Changed inputs (or options), those that force a replacement first."""
    replacing: list[str] = field(default_factory=list)
    protected: bool = False
    details: list[str] = field(default_factory=list)

    def headline(self) -> str:
        verb = f"{self.action} {PROTECTED}" if self.protected else self.action
        line = f"{verb} {self.name} ({self.type})"
        if self.action == REPLACE:
            also = [p for p in self.properties if p not in self.replacing]
            line += ": " + ", ".join(self.replacing)
            if also:
                line += f" (also changes {', '.join(also)})"
        elif self.properties:
            line += ": " + ", ".join(self.properties)
        return line


@dataclass
class Comparison:
    changes: list[Change]
    renamed: list[tuple[str, str]]
    """(old URN, new URN) matched by alias."""

    @property
    def protected(self) -> list[Change]:
        return [c for c in self.changes if c.protected]

    def count(self, *actions: str) -> int:
        return sum(1 for c in self.changes if c.action in actions)


def _resources(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in plan.get("resources", [])}


def _qualified_urn(name: str, type_: str, parent: str, stack: str, project: str) -> str:
    qualified = type_
    if parent and parent.split("::")[2] != STACK_TYPE:
        qualified = f"{parent.split('::')[2]}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def former_urns(resource: Mapping[str, Any], plan: Mapping[str, dict[str, Any]]) -> set[str]:
    """Every URN a resource answers to: its aliases, and its name under each former URN
    of its parent (the engine carries a parent's aliases to its children)."""
    former = set(resource["options"].get("aliases", []))
    parent = plan.get(resource["parent"])
    if parent is not None:
        _, _, rest = resource["urn"].partition("urn:pulumi:")
        stack, project = rest.split("::")[:2]
        for parent_urn in former_urns(parent, plan):
            former.add(
                _qualified_urn(resource["name"], resource["type"], parent_urn, stack, project)
            )
    return former


def _provider_urn(reference: str) -> str:
    return reference.rpartition("::")[0] if reference.count("::") > 3 else reference


def _comparable(type_: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``readback.comparable`` of the plain inputs; a masked one is already a hash of its
    comparable form (``document``)."""
    masked = {key: value for key, value in inputs.items() if is_masked(value)}
    plain = {key: value for key, value in inputs.items() if key not in masked}
    return {**comparable(type_, plain), **masked}


def _changed_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    before = _comparable(new["type"], old.get("inputs", {}))
    after = _comparable(new["type"], new.get("inputs", {}))
    ignored = set(new["options"].get("ignoreChanges", []))
    return {
        key: (before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if key not in ignored and before.get(key) != after.get(key)
    }


def _holds(value: Any, needle: str) -> bool:
    return needle in json.dumps(value)


def compare(
    old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], full: bool = False
) -> Comparison:
    olds, news = _resources(old_plan), _resources(new_plan)
    pairs: dict[str, str] = {urn: urn for urn in news if urn in olds}
    renamed: list[tuple[str, str]] = []
    for urn, resource in news.items():
        if urn in pairs:
            continue
        for former in sorted(former_urns(resource, news)):
            if former in olds and former not in news and former not in pairs.values():
                pairs[urn] = former
                renamed.append((former, urn))
                break

    changed: dict[str, dict[str, tuple[Any, Any]]] = {}
    reasons: dict[str, list[str]] = {}
    for urn, old_urn in pairs.items():
        old, new = olds[old_urn], news[urn]
        changed[urn] = _changed_inputs(old, new)
        reasons[urn] = []
        if _provider_urn(old["provider"]) != _provider_urn(new["provider"]):
            before = olds.get(_provider_urn(old["provider"]), {}).get("inputs")
            after = news.get(_provider_urn(new["provider"]), {}).get("inputs")
            if before != after:
                changed[urn]["provider"] = (old["provider"], new["provider"])

    def verdict(urn: str) -> tuple[str, list[str]]:
        new = news[urn]
        result = classify(
            new["type"],
            changed[urn],
            new["options"].get("replaceOnChanges", []),
            custom=bool(new.get("custom", True)),
        )
        replacing = list(result.replacing)
        if "provider" in changed[urn] and "provider" not in replacing:
            replacing.append("provider")
        return (REPLACE if replacing else UPDATE), replacing

    # A replaced resource's new ID (or new generated value) reaches its dependents.
    replaced: set[str] = set()
    while True:
        now = {urn for urn in pairs if changed[urn] and verdict(urn)[0] == REPLACE}
        if now <= replaced:
            break
        replaced |= now
        for urn, old_urn in pairs.items():
            new = news[urn]
            deps = new["options"].get("propertyDependencies", {})
            for key, value in new.get("inputs", {}).items():
                for dep in deps.get(key, []):
                    if dep not in replaced or key in changed[urn]:
                        continue
                    source = news[dep]
                    old_id = olds[pairs[dep]].get("id", "")
                    if source["type"] in REGENERATED:
                        why = f"{key}: {source['name']} is replaced and generates a new value"
                    elif old_id and _holds(value, old_id):
                        why = f"{key}: holds the ID of {source['name']}, which is replaced"
                    else:
                        continue
                    changed[urn][key] = (olds[old_urn].get("inputs", {}).get(key), value)
                    reasons[urn].append(why)

    changes: list[Change] = []
    for urn, old_urn in pairs.items():
        old, new = olds[old_urn], news[urn]
        if changed[urn]:
            action, replacing = verdict(urn)
            properties = replacing + [k for k in changed[urn] if k not in replacing]
            details = list(reasons[urn])
            seen: dict[str, list[str]] = {}
            for key, (before, after) in changed[urn].items():
                if any(line.startswith(f"{key}: ") for line in reasons[urn]):
                    continue
                lines = describe(key, before, after, full)
                plain = [line.removeprefix(f"{key}: ") for line in lines]
                same = next((k for k, v in seen.items() if v == plain), None)
                details += [f"{key}: the same change as {same}"] if same else lines
                seen[key] = plain
            assumed = classify(new["type"], changed[urn], custom=bool(new.get("custom", True)))
            if assumed.assumed:
                details.append(f"not in the replace table, assumed: {', '.join(assumed.assumed)}")
            protected = action == REPLACE and bool(
                old["options"].get("protect") and new["options"].get("protect")
            )
            changes.append(
                Change(
                    action, new["name"], new["type"], urn, properties, replacing, protected, details
                )
            )
            continue
        options = [
            key
            for key in WATCHED_OPTIONS
            if _normal(old["options"].get(key)) != _normal(new["options"].get(key))
        ]
        if options:
            details = [
                f"{key}: {shown(old['options'].get(key))} -> {shown(new['options'].get(key))}"
                for key in options
            ]
            changes.append(
                Change(OPTIONS, new["name"], new["type"], urn, options, [], False, details)
            )

    matched_old = set(pairs.values())
    for urn, new in news.items():
        if urn not in pairs:
            action = IMPORT if new["options"].get("importId") else CREATE
            details = [f"importId: {new['options']['importId']}"] if action == IMPORT else []
            changes.append(Change(action, new["name"], new["type"], urn, details=details))
    for urn, old in olds.items():
        if urn in matched_old:
            continue
        details = []
        if old["options"].get("retainOnDelete") and not old["options"].get("protect"):
            details.append("retainOnDelete: leaves the state, stays on the server")
        changes.append(
            Change(
                DELETE,
                old["name"],
                old["type"],
                urn,
                protected=bool(old["options"].get("protect")),
                details=details,
            )
        )
    changes.sort(key=lambda c: (not c.protected, ORDER[c.action], c.name, c.type))
    return Comparison(changes=changes, renamed=renamed)


def _normal(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else (value or None)


def render(
    comparison: Comparison,
    old_label: str,
    new_label: str,
    edge: list[str] | None = None,
    outputs: list[str] | None = None,
) -> str:
    """The changes, then (``edge``) what they cost the public sites, then (``outputs``)
    how the stack outputs change."""
    lines = [f"plan diff: {old_label} -> {new_label}"]
    protected = comparison.protected
    if protected:
        lines += [
            "",
            f"!! {len(protected)} protected resource(s) would be deleted or replaced: "
            "pulumi up will refuse",
        ]
        lines += [f"!!   {c.action} {c.name} ({c.type})" for c in protected]
    lines.append("")
    if not comparison.changes:
        lines.append("no changes" + (" to resources" if outputs else ""))
    for change in comparison.changes:
        lines.append(change.headline())
        lines += [f"    {detail}" for detail in change.details]
    for old, new in comparison.renamed:
        lines.append(f"renamed (no change on the server): {old} -> {new}")
    lines += [
        "",
        f"{comparison.count(CREATE, IMPORT)} to create, {comparison.count(REPLACE)} to replace, "
        f"{comparison.count(UPDATE)} to update, {comparison.count(DELETE)} to delete"
        + (f", {comparison.count(OPTIONS)} option changes" if comparison.count(OPTIONS) else ""),
    ]
    if edge:
        lines += ["", "Public sites:", *(f"  {line}" for line in edge)]
    if outputs:
        lines += ["", "Outputs:", *(f"  {line}" for line in outputs)]
    return "\n".join(lines) + "\n"
