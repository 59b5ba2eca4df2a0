"""State is kept: a change to the code never renames or re-parents a resource on Hemma.

A resource's URN (its parents' types, its own type and its name) is how the
engine finds it in state. A URN that changes without an alias to the old one
makes ``pulumi up`` delete the old resource and create a new one: a container
restarted for nothing, or a protected volume that stops the run. The golden
files pin every URN and every output of the default and the Class Hub
configuration; regenerate them deliberately with ``python -m tests.golden``.
"""

from __future__ import annotations

import json

import pulumi
import pytest

from tests.golden import CONFIGS, GOLDEN, outputs_of, urns_of
from tests.harness import Program, resource_urn, run_declarations, run_program

CONTAINER = "docker:index/container:Container"


def unaccounted(golden: list[str], program: Program) -> list[str]:
    """Pinned URNs that nothing declared answers to, under its URN or a former one."""
    answered = {r.urn for r in program.declared}
    for resource in program.declared:
        answered |= program.former_urns(resource)
    return sorted(set(golden) - answered)


def unpinned(golden: list[str], program: Program) -> list[str]:
    """Declared URNs the golden file does not list yet (a new resource, or a moved one)."""
    return sorted({r.urn for r in program.declared} - set(golden))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_pinned_urn_is_still_declared_or_aliased(name: str) -> None:
    program = run_program(CONFIGS[name]())
    golden = json.loads((GOLDEN / f"urns-{name}.json").read_text())
    assert unaccounted(golden, program) == [], "resources would be replaced: add an alias"
    assert unpinned(golden, program) == [], "new URNs: regenerate with python -m tests.golden"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_stack_output_keeps_its_value(name: str) -> None:
    program = run_program(CONFIGS[name]())
    golden = json.loads((GOLDEN / f"outputs-{name}.json").read_text())
    assert outputs_of(program) == golden


def test_the_golden_files_are_what_the_program_declares() -> None:
    for name, config in CONFIGS.items():
        program = run_program(config())
        assert urns_of(program) == json.loads((GOLDEN / f"urns-{name}.json").read_text())


# --- the check itself ---------------------------------------------------------------


class Box(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hemma:test:Box", name, None, opts)
        self.register_outputs({})


def moved(aliased: bool) -> Program:
    """A volume that used to sit at the top level and now sits in a component."""

    def declare() -> None:
        import pulumi_docker as docker

        box = Box("box")
        opts = pulumi.ResourceOptions(parent=box)
        if aliased:
            opts = opts.merge(
                pulumi.ResourceOptions(aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
            )
        docker.Volume("data", name="data", opts=opts)

    return run_declarations(declare)


OLD_VOLUME_URN = resource_urn("data", "docker:index/volume:Volume", "")


def test_a_resource_moved_without_an_alias_is_reported() -> None:
    program = moved(aliased=False)
    assert unaccounted([OLD_VOLUME_URN], program) == [OLD_VOLUME_URN]


def test_a_resource_moved_with_an_alias_to_its_old_urn_is_kept() -> None:
    program = moved(aliased=True)
    volume = next(r for r in program.declared if r.name == "data")
    assert volume.urn != OLD_VOLUME_URN
    assert unaccounted([OLD_VOLUME_URN], program) == []


def test_children_inherit_their_parents_aliases() -> None:
    """Renaming a component moves every child's URN; one alias on the parent covers them."""

    def declare() -> None:
        import pulumi_docker as docker

        box = Box("renamed", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="box")]))
        docker.Volume("box-data", name="data", opts=pulumi.ResourceOptions(parent=box))

    program = run_declarations(declare)
    old_child = resource_urn(
        "box-data", "docker:index/volume:Volume", resource_urn("box", "hemma:test:Box", "")
    )
    assert unaccounted([old_child], program) == []


def test_a_grandchild_urn_carries_its_parents_whole_type_chain() -> None:
    """As the engine writes it (pulumi deployment.go, generateURN: the parent's whole
    qualified type, the root stack left out); the SDK's own mock keeps only the last
    type, so a component moved under another would slip past a mock-form pin."""

    def declare() -> None:
        import pulumi_docker as docker

        outer = Box("outer")
        inner = Box("inner", pulumi.ResourceOptions(parent=outer))
        docker.Volume("data", name="data", opts=pulumi.ResourceOptions(parent=inner))

    program = run_declarations(declare)
    assert {r.name: r.urn for r in program.declared} == {
        "outer": "urn:pulumi:hemma::hemma::hemma:test:Box::outer",
        "inner": "urn:pulumi:hemma::hemma::hemma:test:Box$hemma:test:Box::inner",
        "data": "urn:pulumi:hemma::hemma::hemma:test:Box$hemma:test:Box"
        "$docker:index/volume:Volume::data",
    }


def test_the_pinned_default_configuration_is_the_whole_server() -> None:
    golden = json.loads((GOLDEN / "urns-default.json").read_text())
    containers = [urn for urn in golden if f"${CONTAINER}::" in urn or f"::{CONTAINER}::" in urn]
    assert len(containers) >= 27, "every container of the server is pinned"
