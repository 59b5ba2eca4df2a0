"""Runs the program under the Pulumi SDK's mocks and records what it declares.

This is ``pulumi preview`` without the engine: the same ``components.main.main()``
runs against a mock resource monitor that keeps every RegisterResource request
(inputs with their secret marks, parent, provider and options) and answers
with deterministic IDs and outputs, so two runs of the same code and config
record the same thing. Nothing reaches Hemma, a backend or a provider plugin.

The one difference from a real run: images built from an app checkout that is
absent here are described with a placeholder digest instead of stopping the
program (``build(config, sources_required=False)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi.runtime
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

import components.main as program

STACK_TYPE = "pulumi:pulumi:Stack"
run_to_completion = cast(Callable[[Callable[[], Any]], Callable[[], None]], pulumi.runtime.test)
"""The SDK's runner for mocked programs: waits for every registration and output."""


class ProgramError(Exception):
    """The program stopped: its message, one line per problem (a ``ConfigError``)."""


@dataclass
class Registered:
    """One RegisterResource request, as the engine would receive it."""

    type: str
    name: str
    urn: str
    id: str
    custom: bool
    parent: str
    provider: str
    raw_inputs: dict[str, Any]
    """Inputs as sent, secrets still wrapped (``rpc.is_rpc_secret``)."""
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    delete_before_replace_defined: bool
    """Set by the program, not left to the provider's default (pulumi/pulumi#3118: only
    then does ``False`` override pulumi-docker's ``DeleteBeforeReplace: true``)."""
    import_id: str
    ignore_changes: list[str]
    replace_on_changes: list[str]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    deleted_with: str
    state: dict[str, Any]
    """What the mock provider returned (inputs and computed outputs), secrets unwrapped."""
    aliases: list[str] = field(default_factory=list)
    """URNs this resource was known by before, resolved the way the engine resolves them."""
    providers: dict[str, str] = field(default_factory=dict)
    """Package -> provider reference, as the ``providers`` option passed them."""


@dataclass
class Evaluation:
    """Everything one run of the program declared and exported."""

    project: str
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    """Resolved stack outputs (plain values; secrets are named in ``secret_outputs``)."""
    secret_outputs: set[str] = field(default_factory=set)


def unwrap(value: Any) -> Any:
    """A value with every secret wrapper removed."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The URN the engine gives a resource: its parent's whole type chain, then its own
    type and name; the root stack is not part of the chain."""
    qualified = type_
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def random_id_hex(seed: str, inputs: Mapping[str, Any]) -> str:
    """A RandomId's ``hex``. The real one draws new bytes on each replacement (its
    keepers changed); here they follow from its name and keepers, so a run repeats."""
    keepers = sorted((inputs.get("keepers") or {}).items())
    drawn = hashlib.sha256(f"{seed}::{keepers}".encode()).hexdigest()
    return drawn[: 2 * int(inputs.get("byteLength", 8))]


class PlanMocks(pulumi.runtime.Mocks):
    """What the providers would compute, deterministically, from the inputs alone."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        inputs = unwrap(args.inputs)
        seed = hashlib.sha256(f"{args.typ}::{args.name}".encode()).hexdigest()
        # Generated values come from another hash than the ID, which must not hold them.
        generated = hashlib.sha256(f"generated::{seed}".encode()).digest() * 4
        if args.typ == "random:index/randomPassword:RandomPassword":
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            length = int(inputs.get("length", 16))
            # min_lower/min_upper/min_numeric are met by the first three characters.
            state["result"] = "aA1" + "".join(
                alphabet[b % len(alphabet)] for b in generated[: max(length - 3, 0)]
            )
        elif args.typ == "random:index/randomId:RandomId":
            state["hex"] = random_id_hex(seed, inputs)
        elif args.typ == "random:index/randomString:RandomString":
            state["result"] = generated.hex()[: int(inputs.get("length", 16))]
        elif args.typ == "docker:index/image:Image":
            built = hashlib.sha256(repr(sorted(inputs.items())).encode()).hexdigest()
            state["repoDigest"] = f"{inputs.get('imageName')}@sha256:{built}"
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            image_digest = hashlib.sha256(str(inputs.get("name")).encode()).hexdigest()
            state["imageId"] = f"sha256:{image_digest}"
            state["repoDigest"] = f"{inputs.get('name')}@sha256:{image_digest}"
        # A distinctive ID: a dependent input that holds it is found by the diff when
        # the resource is replaced (a real replacement gets a new ID).
        return args.resource_id or f"{args.name}-id{seed[:12]}", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, with engine URNs, that keeps every registration."""

    record: type[Registered] = Registered
    """What each registration is kept as (a subclass may add helpers)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:
        register: Callable[[Any], Any] = super().RegisterResource
        response = register(request)
        if request.type == STACK_TYPE:
            return response
        self.registered.append(
            self.record(
                type=request.type,
                name=request.name,
                urn=response.urn,
                id=response.id,
                custom=request.custom,
                parent=request.parent,
                provider=request.provider,
                raw_inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                delete_before_replace=request.deleteBeforeReplace,
                delete_before_replace_defined=request.deleteBeforeReplaceDefined,
                import_id=request.importId,
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                additional_secret_outputs=list(request.additionalSecretOutputs),
                deleted_with=request.deletedWith,
                state=unwrap(self.resources[response.urn].state),
                aliases=[
                    *request.aliasURNs,
                    *(self._alias_urn(request, alias) for alias in request.aliases),
                ],
                providers=dict(request.providers),
            )
        )
        return response

    def _alias_urn(self, request: Any, alias: Any) -> str:
        """An alias as the engine reads it: a URN, or a spec of what differs from now."""
        if alias.urn:
            return str(alias.urn)
        spec = alias.spec
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return engine_urn(
            spec.stack or pulumi.get_stack(),
            spec.project or pulumi.get_project(),
            parent,
            spec.type or request.type,
            spec.name or request.name,
        )


def _offline(build: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``build`` that describes images from absent checkouts instead of stopping.

    A revision older than that parameter runs as it is, and needs its checkouts.
    """
    if "sources_required" not in inspect.signature(build).parameters:
        return build

    def offline_build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs["sources_required"] = False
        return build(*args, **kwargs)

    return offline_build


@contextlib.contextmanager
def _running_in(root: Path) -> Iterator[None]:
    """The program reads relative paths (``appSources``) from the project directory,
    where the CLI starts it."""
    before = Path.cwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _offline_build() -> Iterator[None]:
    real = program.build
    program.build = _offline(real)
    try:
        yield
    finally:
        program.build = real


def evaluate(
    values: Mapping[str, str],
    secret_keys: set[str],
    *,
    root: Path,
    project: str,
    stack: str,
) -> Evaluation:
    """Run ``components.main.main()`` with ``values`` (keys without the namespace, values
    as the CLI passes them) and record it all; raise ``ProgramError`` if it stops."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = PlanMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {f"{project}:{key}": value for key, value in values.items()},
        [f"{project}:{key}" for key in secret_keys],
    )
    evaluation = Evaluation(project=project, stack=stack, resources=monitor.registered)

    def run() -> pulumi.Output[Any]:
        exported = program.main()

        async def resolve() -> None:
            for name, value in exported.items():
                out = pulumi.Output.from_input(value)
                if await out.is_secret():
                    evaluation.secret_outputs.add(name)
                evaluation.outputs[name] = unwrap(await out.future())

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    try:
        with _running_in(root), _offline_build():
            run_to_completion(run)()
    except pulumi.RunError as error:
        raise ProgramError(str(error)) from None
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return evaluation
