"""Runs the real program (``__main__.py``) under Pulumi mocks and records what it declares.

Each run gets a fresh event loop, fresh mocks and fresh config, so tests never
share state. The mock monitor keeps every RegisterResource request, so tests
can read the resource options (protect, delete_before_replace, import ID,
parent, provider) as the engine would receive them.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import hashlib
import json
import logging
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import yaml
from pulumi.runtime import rpc

from components.model.rollout import declared_service
from plan.runner import RecordingMonitor as PlanRecorder
from plan.runner import Registered, engine_urn, random_id_hex, unwrap
from tests.sources import checkouts

ROOT = Path(__file__).resolve().parents[1]
STACK_FILE = ROOT / "Pulumi.hemma.yaml"

_KEY_BLOB = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
TEST_HOST_KEY = "ssh-ed25519 " + base64.b64encode(_KEY_BLOB).decode()
TEST_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-key\n-----END OPENSSH PRIVATE KEY-----\n"
)

OPERATOR_VALUES: dict[str, Any] = {
    "sshHostKey": TEST_HOST_KEY,
    "sshPrivateKey": TEST_PRIVATE_KEY,
    "smtpPassword": "test-smtp-password-0123456789",
    "anthropicApiKey": "sk-ant-test-0123456789abcdefghijklmnop",
    "openaiApiKey": "sk-test-0123456789abcdefghijklmnopqrstu",
    "resticPassword": "test-restic-password-0123456789",
}
"""What the operator sets by hand before the first preview (never committed)."""
OPERATOR_SECRETS = {
    "sshPrivateKey",
    "smtpPassword",
    "anthropicApiKey",
    "openaiApiKey",
    "resticPassword",
}
BACKUP_REPOSITORY = "sftp:backup@nas.example.test:/srv/restic/hemma"
"""Where the operator's backups go: chosen by the operator, not in the stack file."""


def classhub_site() -> dict[str, Any]:
    """What the operator adds (besides ``classHub.enabled``) to run Class Hub."""
    return {
        "hostnames": {"classhub": "classhub.hule.education"},
        "appSources": {"classhub": checkouts()["classhub"]},
    }


def with_classhub(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with Class Hub switched on and its site values added."""
    result = copy.deepcopy(config)
    result["classHub"] = {**result.get("classHub", {}), "enabled": True}
    for key, values in classhub_site().items():
        result[key] = {**result.get(key, {}), **values}
    return result


def local_config(sources: bool = True) -> dict[str, Any]:
    """Pulumi.local.yaml as the CLI hands it over: the operator's own Docker. With
    ``sources``, the stand-in checkouts; without, checkouts that are not there."""
    data = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    config = {
        key.removeprefix("hemma:"): value
        for key, value in data["config"].items()
        if key.startswith("hemma:")
    }
    if sources:
        config["appSources"] = {a: p for a, p in checkouts().items() if a != "classhub"}
    else:
        config["appSources"] = {a: f"/nonexistent/{a}" for a in ("skriptoteket", "huleedu")}
    return config


def stack_file_config() -> dict[str, Any]:
    """Pulumi.hemma.yaml's site values, keys without the ``hemma:`` prefix.

    Values the operator has added on their own machine (encrypted ``secure:``
    secrets, the pinned host key) are left out, so the tests see the same config
    on a fresh clone and on the operator's checkout.
    """
    data = yaml.safe_load(STACK_FILE.read_text())
    return {
        key.removeprefix("hemma:"): value
        for key, value in data["config"].items()
        if key.startswith("hemma:")
        and key.removeprefix("hemma:") not in OPERATOR_VALUES
        and not (isinstance(value, dict) and "secure" in value)
    }


def site_config() -> dict[str, Any]:
    """The stack file plus the values the operator sets: what ``pulumi up`` sees, with
    the apps' source checkouts replaced by stand-ins (``tests/sources.py``)."""
    sources = {app: path for app, path in checkouts().items() if app != "classhub"}
    config = {**stack_file_config(), **OPERATOR_VALUES, "appSources": sources}
    config["backups"] = {**config["backups"], "repository": BACKUP_REPOSITORY}
    return config


SECOND_HOST = "gpu"
SECOND_HOST_PLACED = ("huleedu_essay_embed_offload", "huleedu_language_tool_service")
"""HuleEdu's localhost-only research services: reached by no other service, routed by
nothing, no database, their one volume a cache. The GPU box's first tenants."""


def two_host_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config`` (the site config) with a second machine, ``gpu``, that runs HuleEdu's
    research services."""
    config = dict(site_config() if config is None else config)
    config["hosts"] = {
        SECOND_HOST: {
            "sshHost": "gpu.hule.education",
            "sshPort": 2222,
            "sshUser": "operator",
            "sshHostKey": TEST_HOST_KEY,
            "dockerHost": "ssh://gpu",
        }
    }
    config["serviceHosts"] = {name: SECOND_HOST for name in SECOND_HOST_PLACED}
    return config


def as_cli_value(value: Any) -> str:
    """The CLI hands every config value to the program as a string; objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def contains_secret(value: Any) -> bool:
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


class Declared(Registered):
    """One resource as the engine received it (plan/runner.py records it)."""

    @property
    def inputs(self) -> dict[str, Any]:
        return unwrap(self.raw_inputs)

    def secret_input(self, key: str) -> bool:
        return contains_secret(self.raw_inputs.get(key))

    @staticmethod
    def unwrap_value(raw: Any) -> Any:
        return unwrap(raw)

    @staticmethod
    def is_secret_value(raw: Any) -> bool:
        """Whether this one value reached the engine marked secret."""
        return bool(rpc.is_rpc_secret(raw))


class HemmaMocks(pulumi.runtime.Mocks):
    """Returns what the providers would compute, deterministically."""

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        inputs = unwrap(args.inputs)
        digest = hashlib.sha256(args.name.encode()).hexdigest()
        if args.typ == "random:index/randomPassword:RandomPassword":
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            seed = hashlib.sha256(args.name.encode()).digest() * 2
            state["result"] = "aA1" + "".join(
                alphabet[b % len(alphabet)] for b in seed[: int(inputs["length"]) - 3]
            )
        elif args.typ == "random:index/randomString:RandomString":
            state["result"] = digest[: int(inputs["length"])]
        elif args.typ == "random:index/randomId:RandomId":
            state["hex"] = random_id_hex(digest, inputs)
        elif args.typ == "docker:index/image:Image":
            built = hashlib.sha256(repr(sorted(inputs.items())).encode()).hexdigest()
            state["repoDigest"] = f"{inputs['imageName']}@sha256:{built}"
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            image_digest = hashlib.sha256(inputs["name"].encode()).hexdigest()
            state["imageId"] = f"sha256:{image_digest}"
            state["repoDigest"] = f"{inputs['name']}@sha256:{image_digest}"
        return args.resource_id or f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        return {}, None


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


class RecordingMonitor(PlanRecorder):
    """The offline plan's recorder (engine URNs, every registration kept as a
    ``Declared``), and what the program logged with ``pulumi.log.warn``."""

    record = Declared

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.warnings: list[str] = []
        self.logger = logging.getLogger(f"hemma-test-{id(self)}")
        self.logger.propagate = False
        self.logger.addHandler(_Collect(self.warnings))

    @property
    def declared(self) -> list[Declared]:
        return cast(list[Declared], self.registered)


def resource_urn(
    name: str, type_: str, parent: str, stack: str = "hemma", project: str = "hemma"
) -> str:
    """The URN the engine gives a resource (pulumi deployment.go, generateURN)."""
    return engine_urn(stack, project, parent, type_, name)


def service_name(container: Declared) -> str:
    """A container's stable name: its service label when start-first, else its name."""
    return declared_service(container.inputs) or container.name


@dataclass
class Program:
    declared: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    exported: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.declared if r.type == type_]

    def named(self, name: str) -> Declared:
        matches = [r for r in self.declared if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, got {len(matches)}"
        return matches[0]

    @property
    def containers(self) -> list[Declared]:
        return self.of_type("docker:index/container:Container")

    @property
    def services(self) -> dict[str, Declared]:
        """Every container by its stable name (``service_name``)."""
        return {service_name(c): c for c in self.containers}

    def container(self, docker_name: str) -> Declared:
        """The container named ``docker_name``, or the start-first one of that service
        (its own name is ``docker_name-DIGEST``)."""
        matches = [c for c in self.containers if service_name(c) == docker_name]
        assert len(matches) == 1, f"expected one container {docker_name}, got {len(matches)}"
        return matches[0]

    def by_urn(self, urn: str) -> Declared:
        return next(r for r in self.declared if r.urn == urn)

    def former_urns(self, resource: Declared) -> set[str]:
        """Every URN ``resource`` answers to: its own aliases, and its name under each
        former URN of its parent (the engine carries a parent's aliases to its children)."""
        former = set(resource.aliases)
        parent = next((r for r in self.declared if r.urn == resource.parent), None)
        if parent is not None:
            for parent_urn in self.former_urns(parent):
                former.add(resource_urn(resource.name, resource.type, parent_urn))
        return former


def provider_name(resource: Declared) -> str:
    """``hemma-docker`` of a provider reference ``URN::ID`` (``urn:...::hemma-docker::ID``)."""
    return resource.provider.rsplit("::", 1)[0].rsplit("::", 1)[-1]


def on_machine(program: Program, host: str) -> Program:
    """What machine ``host``'s Docker runs: the Docker resources of its provider. Hemma's
    side keeps every other resource too (the commands, the database objects)."""
    provider = f"{host}-docker"

    def here(resource: Declared) -> bool:
        if resource.custom and resource.type.startswith("docker:"):
            return provider_name(resource) == provider
        return host == "hemma"

    return dataclasses.replace(program, declared=[r for r in program.declared if here(r)])


def _fresh_runtime(
    config: dict[str, Any], secret_keys: set[str], preview: bool = False
) -> tuple[asyncio.AbstractEventLoop, RecordingMonitor]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = HemmaMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks,
        project="hemma",
        stack="hemma",
        preview=preview,
        monitor=monitor,
        logger=monitor.logger,
    )
    pulumi.runtime.set_all_config(
        {f"hemma:{key}": as_cli_value(value) for key, value in config.items()},
        [f"hemma:{key}" for key in secret_keys],
    )
    return loop, monitor


def _run_main() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


_RUNS: dict[str, Program] = {}
"""Programs already run, by everything they read: the config, the secret keys, the
mode and the content of every source checkout the config names. A run takes about
a second; many tests read the same configuration, each gets its own copy."""


def _run_key(config: dict[str, Any], secret_keys: set[str], preview: bool) -> str:
    digest = hashlib.sha256(
        json.dumps([config, sorted(secret_keys), preview], sort_keys=True, default=str).encode()
    )
    for source in sorted(str(v) for v in (config.get("appSources") or {}).values()):
        root = Path(source)
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_file():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def run_program(
    config: dict[str, Any] | None = None,
    secret_keys: set[str] | None = None,
    preview: bool = False,
    fresh: bool = False,
) -> Program:
    """Run ``__main__.py`` with ``config`` (default: the site config) and record it all;
    ``fresh`` runs it again even when this configuration already ran."""
    config = site_config() if config is None else config
    secret_keys = OPERATOR_SECRETS if secret_keys is None else secret_keys
    key = _run_key(config, secret_keys, preview)
    if fresh:
        return _run_program(config, secret_keys, preview)
    if key not in _RUNS:
        _RUNS[key] = _run_program(config, secret_keys, preview)
    return copy.deepcopy(_RUNS[key])


def _run_program(config: dict[str, Any], secret_keys: set[str], preview: bool) -> Program:
    loop, monitor = _fresh_runtime(config, secret_keys, preview)
    program = Program(declared=monitor.declared, warnings=monitor.warnings)

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        outputs: dict[str, Any] = _run_main()["outputs"]
        stack = pulumi.runtime.get_root_resource()
        program.exported = set(getattr(stack, "outputs", {}) or {})

        async def resolve() -> None:
            for name, value in outputs.items():
                out = pulumi.Output.from_input(value)
                if await out.is_secret():
                    program.secret_outputs.add(name)
                program.outputs[name] = await out.future()

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    try:
        run()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return program


def run_declarations(declare: Callable[[], Any]) -> Program:
    """Run ``declare`` as a whole program under fresh mocks and record what it declares."""
    loop, monitor = _fresh_runtime({}, set())
    try:
        pulumi.runtime.test(declare)()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return Program(declared=monitor.declared)


def run_expecting_error(
    config: dict[str, Any], secret_keys: set[str] | None = None
) -> tuple[str, Program]:
    """Run a program that must stop on bad config; return its message and what it declared.

    ``pulumi.runtime.test`` waits for every outstanding registration before it
    re-raises, so ``declared`` is complete when this returns.
    """
    loop, monitor = _fresh_runtime(config, OPERATOR_SECRETS if secret_keys is None else secret_keys)
    message = None
    try:
        pulumi.runtime.test(_run_main)()
    except pulumi.RunError as error:
        message = str(error)
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert message is not None, "the program did not stop with a config error"
    return message, Program(declared=monitor.declared)
