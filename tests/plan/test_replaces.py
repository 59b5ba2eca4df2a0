"""The replace table, and the diff's reading of it on small hand-made plans."""

from __future__ import annotations

from typing import Any

import pytest

from plan import diff
from plan.replaces import RULES, classify

CONTAINER = "docker:index/container:Container"
COMMAND = "command:remote:Command"


@pytest.mark.parametrize(
    ("type_", "changed", "action"),
    [
        (CONTAINER, ["image"], "replace"),
        (CONTAINER, ["envs"], "replace"),
        (CONTAINER, ["labels"], "replace"),
        (CONTAINER, ["uploads"], "replace"),
        (CONTAINER, ["restart"], "update"),
        (CONTAINER, ["memory"], "update"),
        (CONTAINER, ["mustRun"], "update"),
        (CONTAINER, ["destroyGraceSeconds"], "update"),
        (CONTAINER, ["wait", "waitTimeout"], "update"),
        (CONTAINER, ["healthcheck"], "update"),
        (CONTAINER, ["healthcheck", "labels"], "replace"),
        ("docker:index/network:Network", ["labels"], "replace"),
        ("docker:index/volume:Volume", ["name"], "replace"),
        ("docker:index/volume:Volume", ["driverOpts"], "replace"),
        ("docker:index/volume:Volume", ["cluster"], "update"),
        (COMMAND, ["triggers"], "replace"),
        (COMMAND, ["create", "update", "delete", "connection"], "update"),
        ("command:local:Command", ["create"], "update"),
        ("command:local:Command", ["triggers"], "replace"),
        ("postgresql:index/database:Database", ["template"], "replace"),
        ("postgresql:index/database:Database", ["lcCtype"], "replace"),
        ("postgresql:index/database:Database", ["owner", "name"], "update"),
        ("postgresql:index/role:Role", ["name"], "update"),
        ("postgresql:index/role:Role", ["password", "login"], "update"),
        ("random:index/randomPassword:RandomPassword", ["length"], "replace"),
        ("random:index/randomString:RandomString", ["special"], "replace"),
    ],
)
def test_the_table(type_: str, changed: list[str], action: str) -> None:
    assert classify(type_, changed).action == action


def test_an_unknown_container_field_is_assumed_to_replace_and_says_so() -> None:
    verdict = classify(CONTAINER, ["deviceCgroupRules"])
    assert verdict.action == "replace"
    assert verdict.assumed == ("deviceCgroupRules",)
    assert classify(CONTAINER, ["image"]).assumed == ()


def test_an_unknown_type_is_assumed_to_replace() -> None:
    verdict = classify("aws:s3/bucket:Bucket", ["tags"])
    assert verdict.action == "replace" and verdict.assumed == ("tags",)


def test_a_replace_on_changes_option_replaces() -> None:
    assert classify(COMMAND, ["create"], ["create"]).action == "replace"
    assert classify(COMMAND, ["create"], ["triggers[*]"]).action == "update"


def test_every_rule_names_its_source() -> None:
    assert all(rule.source for rule in RULES.values())


# --- the diff on hand-made plans ----------------------------------------------------------


def urn(type_: str, name: str, parent_type: str = "") -> str:
    qualified = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:hemma::hemma::{qualified}::{name}"


def resource(type_: str, name: str, inputs: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "name": name,
        "urn": options.pop("urn", urn(type_, name)),
        "id": f"{name}-id",
        "custom": True,
        "parent": options.pop("parent", ""),
        "provider": "",
        "inputs": inputs,
        "options": {
            "protect": False,
            "retainOnDelete": False,
            "deleteBeforeReplace": False,
            "importId": "",
            "ignoreChanges": [],
            "replaceOnChanges": [],
            "dependencies": [],
            "propertyDependencies": {},
            "aliases": [],
            **options,
        },
    }


def plan_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"format": 1, "resources": list(resources)}


def test_a_dependent_of_a_replaced_resource_that_holds_its_id_changes_with_it() -> None:
    old_web = resource(CONTAINER, "web", {"image": "a"})
    step = resource(
        COMMAND,
        "web-step",
        {"triggers": ["web-id"], "create": "x"},
        propertyDependencies={"triggers": [old_web["urn"]]},
    )
    new_web = resource(CONTAINER, "web", {"image": "b"})
    comparison = diff.compare(plan_of(old_web, step), plan_of(new_web, step))
    assert {(c.action, c.name) for c in comparison.changes} == {
        ("replace", "web"),
        ("replace", "web-step"),
    }
    reason = next(c for c in comparison.changes if c.name == "web-step").details
    assert reason == ["triggers: holds the ID of web, which is replaced"]


def test_an_update_does_not_reach_dependents() -> None:
    old_web = resource(CONTAINER, "web", {"restart": "no"})
    step = resource(
        COMMAND,
        "web-step",
        {"triggers": ["web-id"]},
        propertyDependencies={"triggers": [old_web["urn"]]},
    )
    new_web = resource(CONTAINER, "web", {"restart": "unless-stopped"})
    comparison = diff.compare(plan_of(old_web, step), plan_of(new_web, step))
    assert [(c.action, c.name) for c in comparison.changes] == [("update", "web")]


def test_ignored_changes_are_no_change() -> None:
    old = resource(
        "docker:index/volume:Volume", "data", {"name": "d", "labels": []}, ignoreChanges=["labels"]
    )
    new = resource(
        "docker:index/volume:Volume",
        "data",
        {"name": "d", "labels": [{"label": "x", "value": "y"}]},
        ignoreChanges=["labels"],
    )
    assert diff.compare(plan_of(old), plan_of(new)).changes == []


def test_an_aliased_resource_is_the_same_resource() -> None:
    old = resource(CONTAINER, "old-name", {"image": "a"})
    new = resource(CONTAINER, "new-name", {"image": "a"}, aliases=[old["urn"]])
    comparison = diff.compare(plan_of(old), plan_of(new))
    assert comparison.changes == []
    assert comparison.renamed == [(old["urn"], new["urn"])]


def test_a_retained_resource_leaves_only_the_state() -> None:
    old = resource("docker:index/volume:Volume", "cache", {"name": "c"}, retainOnDelete=True)
    (change,) = diff.compare(plan_of(old), plan_of()).changes
    assert change.action == "delete" and not change.protected
    assert "stays on the server" in change.details[0]


def test_a_new_resource_with_an_import_id_is_imported() -> None:
    new = resource("docker:index/volume:Volume", "data", {"name": "d"}, importId="d")
    (change,) = diff.compare(plan_of(), plan_of(new)).changes
    assert change.action == "import"


def test_a_changed_protect_flag_is_an_option_change() -> None:
    old = resource("docker:index/volume:Volume", "data", {"name": "d"})
    new = resource("docker:index/volume:Volume", "data", {"name": "d"}, protect=True)
    (change,) = diff.compare(plan_of(old), plan_of(new)).changes
    assert (change.action, change.properties) == ("options", ["protect"])


@pytest.mark.parametrize(
    ("type_", "custom", "action", "assumed"),
    [
        # A field newer than the provider source read: replaced, and said to be a guess.
        ("docker:index/remoteImage:RemoteImage", True, "replace", ("newField",)),
        # A provider's own config: diffed by its DiffConfig, an update assumed.
        ("pulumi:providers:docker", True, "update", ("newField",)),
        # A type with no table: a replacement assumed.
        ("vendor:index/thing:Thing", True, "replace", ("newField",)),
        # A component has no provider: the engine only updates its state.
        ("hemma:proxy:ProxyStack", False, "update", ()),
    ],
)
def test_a_change_the_tables_do_not_know_says_what_it_assumes(
    type_: str, custom: bool, action: str, assumed: tuple[str, ...]
) -> None:
    verdict = classify(type_, ["newField"], custom=custom)
    assert (verdict.action, verdict.assumed) == (action, assumed)
