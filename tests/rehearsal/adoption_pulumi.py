"""A stand-in for ``scripts/pulumi``, the one stand-in of the adoption rehearsal:
there is no Pulumi CLI on this machine and none can be installed.

It records every argv (one JSON line in ``$ADOPTION_STATE/argv.log``) and does what
the rehearsal needs of the real one:

- ``config set --path PATH VALUE`` writes the value into the stack file
  (``$ADOPTION_STACK_FILE``), at the path as Pulumi parses it;
- ``up --target URN ...`` first applies the engine's target rules to the plan
  (``$ADOPTION_PLAN``), as pulumi pkg/resource/deploy/step_generator.go does on a
  first up: providers are targeted implicitly, and a resource that is created and
  depends on (parent, dependsOn, property dependency, provider) a resource neither
  targeted nor a provider fails the run, "untargeted create". It then writes the
  state a stack export shows: the targeted resources, the RandomPassword's
  ``result`` being ``$ADOPTION_ADMIN_PASSWORD``;
- ``stack export [--show-secrets]`` prints that state, each secret as
  ``{SIG_KEY: SECRET_SIG, "plaintext": JSON}`` with ``--show-secrets`` and as
  ``{SIG_KEY: SECRET_SIG, "ciphertext": ...}`` without (pulumi
  pkg/resource/stack/deployment.go, SerializePropertyValue);
- ``up`` without targets adds to that state each declared role with the password
  the program gave it (``$ADOPTION_ROLE_PASSWORDS``, JSON), as a stack export shows
  a role after a full up; what the providers would do on Hemma the rehearsal does
  itself, on the real engine;
- ``refresh`` and ``preview`` are only recorded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.rehearsal.adoption_paths import set_path

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE = "postgresql:index/role:Role"
STACK = "pulumi:pulumi:Stack"


def state_dir() -> Path:
    return Path(os.environ["ADOPTION_STATE"])


def secret(value: Any, show: bool) -> dict[str, str]:
    if show:
        return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(value)}
    return {SIG_KEY: SECRET_SIG, "ciphertext": "v1:c3RhbmQtaW4="}


def config_set(args: list[str]) -> int:
    words = [a for a in args if not a.startswith("--")]
    if "--path" not in args or len(words) != 2:
        print(f"stand-in pulumi: config set takes --path PATH VALUE, not {args}", file=sys.stderr)
        return 2
    path, value = words
    stack_file = Path(os.environ["ADOPTION_STACK_FILE"])
    data = yaml.safe_load(stack_file.read_text())
    config: dict[str, Any] = {
        k.removeprefix("hemma:"): v for k, v in data["config"].items() if k.startswith("hemma:")
    }
    set_path(config, path, value)
    data["config"] = {**data["config"], **{f"hemma:{k}": v for k, v in config.items()}}
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return 0


def targeted_up(targets: list[str]) -> int:
    plan = json.loads(Path(os.environ["ADOPTION_PLAN"]).read_text())
    resources = {r["urn"]: r for r in plan["resources"]}
    unknown = [t for t in targets if t not in resources]
    if unknown:
        print(f"error: no resource matches --target {unknown[0]}", file=sys.stderr)
        return 255

    def provider(urn: str) -> bool:
        return resources[urn]["type"].startswith("pulumi:providers:")

    created = [u for u in resources if u in targets or provider(u)]
    for urn in created:
        r = resources[urn]
        options = r.get("options") or {}
        deps = [r.get("parent") or "", *options.get("dependencies", [])]
        deps += [d for v in (options.get("propertyDependencies") or {}).values() for d in v]
        deps.append((r.get("provider") or "").rsplit("::", 1)[0])
        for dep in deps:
            if dep in resources and dep not in targets and not provider(dep):
                print(
                    f"error: Resource '{urn}' depends on '{dep}' which was was not specified "
                    "in --target list.\nerror: untargeted create",
                    file=sys.stderr,
                )
                return 255
    state = [
        {
            "urn": urn,
            "type": resources[urn]["type"],
            "custom": resources[urn]["custom"],
            "parent": resources[urn]["parent"],
            "outputs": (
                {"result": os.environ["ADOPTION_ADMIN_PASSWORD"], "length": 40}
                if resources[urn]["type"] == PASSWORD
                else {}
            ),
        }
        for urn in created
    ]
    (state_dir() / "state.json").write_text(json.dumps(state))
    print(f"Resources:\n    + {len(created)} created")
    return 0


def full_up() -> int:
    plan = json.loads(Path(os.environ["ADOPTION_PLAN"]).read_text())
    passwords = json.loads(os.environ["ADOPTION_ROLE_PASSWORDS"])
    path = state_dir() / "state.json"
    state = json.loads(path.read_text()) if path.exists() else []
    known = {r["urn"] for r in state}
    for r in plan["resources"]:
        if r["type"] == ROLE and r["urn"] not in known:
            role = r["inputs"]["name"]
            state.append(
                {
                    "urn": r["urn"],
                    "type": ROLE,
                    "custom": True,
                    "parent": r["parent"],
                    "outputs": {"name": role, "password": passwords[role], "login": True},
                }
            )
    path.write_text(json.dumps(state))
    return 0


def export(show: bool) -> int:
    path = state_dir() / "state.json"
    resources = json.loads(path.read_text()) if path.exists() else []
    for r in resources:
        if r["type"] == PASSWORD:
            r["outputs"]["result"] = secret(r["outputs"]["result"], show)
        if r["type"] == ROLE:
            r["outputs"]["password"] = secret(r["outputs"]["password"], show)
    stack = {
        "urn": "urn:pulumi:hemma::hemma::pulumi:pulumi:Stack::hemma-hemma",
        "type": "pulumi:pulumi:Stack",
    }
    print(
        json.dumps({"version": 3, "deployment": {"manifest": {}, "resources": [stack, *resources]}})
    )
    return 0


def main(argv: list[str]) -> int:
    with (state_dir() / "argv.log").open("a") as log:
        log.write(json.dumps(argv) + "\n")
    if argv[:2] == ["config", "set"]:
        return config_set(argv[2:])
    if argv[:1] == ["up"]:
        targets = [argv[i + 1] for i, a in enumerate(argv) if a == "--target"]
        return targeted_up(targets) if targets else full_up()
    if argv[:2] == ["stack", "export"]:
        return export("--show-secrets" in argv)
    if argv[:2] == ["stack", "output"]:
        print("error: no outputs: the stack has not been updated successfully", file=sys.stderr)
        return 255
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
