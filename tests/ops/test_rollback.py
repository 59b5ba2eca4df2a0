"""scripts/rollback: the image before the running one, through the plan, in one
command; nothing changes when Hemma cannot say which that is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ops import rollback
from tests.harness import ROOT
from tests.parts.engine import Engine

pytest_plugins = ["tests.parts.fixtures"]

SSH = """#!@PYTHON@
import json, os, sys
with open(os.environ["ROLLBACK_LOG"], "a") as log:
    log.write(json.dumps(["ssh", *sys.argv[1:]]) + "\\n")
remote = sys.argv[-1]
if os.environ.get("SSH_MODE") == "local":
    os.execv("/bin/sh", ["sh", "-c", remote])
if os.environ.get("SSH_MODE") == "down":
    print("ssh: connect to host hemma port 22: Connection refused", file=sys.stderr)
    sys.exit(255)
if " inspect -f " in remote and " ps -q " in remote:
    print(os.environ["RUNNING"])
elif " image ls " in remote:
    print(os.environ["LISTED"])
"""
PULUMI = """#!@PYTHON@
import json, os, sys
with open(os.environ["ROLLBACK_LOG"], "a") as log:
    log.write(json.dumps(["pulumi", *sys.argv[1:]]) + "\\n")
"""
LISTED = (
    "skriptoteket-web:digest5 aaaaaaaaaaaa 2 hours ago\n"
    "skriptoteket-web:hemma aaaaaaaaaaaa 2 hours ago\n"
    "skriptoteket-web:digest4 bbbbbbbbbbbb 2 days ago\n"
    "skriptoteket-web:digest3 cccccccccccc 5 days ago\n"
)
RUNNING = f"sha256:{'a' * 64} skriptoteket-web:digest5"


def scripts_rollback(
    tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    log = tmp_path / "calls.log"
    tools = {}
    for name, text in (("ssh", SSH), ("pulumi", PULUMI)):
        tools[name] = tmp_path / name
        tools[name].write_text(text.replace("@PYTHON@", sys.executable))
        tools[name].chmod(0o755)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "rollback"), *args, "--ssh", "hemma.test",
         "--ssh-command", str(tools["ssh"]), "--pulumi", str(tools["pulumi"])],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ROLLBACK_LOG": str(log), "RUNNING": RUNNING, "LISTED": LISTED,
             **env},
    )  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def pulumi_calls(calls: list[list[str]]) -> list[list[str]]:
    return [call[1:] for call in calls if call[0] == "pulumi"]


def test_it_pins_the_image_before_the_running_one_and_shows_the_plan(tmp_path: Path) -> None:
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web")
    assert done.returncode == 0, done.stderr
    assert pulumi_calls(calls) == [
        ["config", "set", "--path", "imageOverrides.skriptoteket-web", "skriptoteket-web:digest4"],
        ["preview"],
    ]
    assert "skriptoteket-web:digest5  aaaaaaaaaaaa  2 hours ago  (running)" in done.stdout
    assert "skriptoteket-web:hemma" not in done.stdout, "the stable tag is no way back"
    remote = [call[-1] for call in calls if call[0] == "ssh"]
    assert remote[0] == rollback.running_command("docker", "skriptoteket-web")
    assert remote[1] == (
        "docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedSince}}' "
        "skriptoteket-web"
    )


def test_to_must_name_an_image_that_is_on_hemma(tmp_path: Path) -> None:
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web", "--to", "skriptoteket-web:x")
    assert done.returncode == 2 and "is not on Hemma" in done.stderr
    assert pulumi_calls(calls) == []
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web", "--to", "skriptoteket-web:digest3")
    assert done.returncode == 0, done.stderr
    assert pulumi_calls(calls)[-2][-1] == "skriptoteket-web:digest3"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"LISTED": "skriptoteket-web:digest5 aaaaaaaaaaaa now\n"}, "no earlier image"),
        ({"LISTED": "skriptoteket-web:digest4 bbbbbbbbbbbb now\n"}, "is not among"),
    ],
)
def test_with_nothing_to_go_back_to_it_changes_nothing(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web", **env)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert pulumi_calls(calls) == []


def test_list_and_undo(tmp_path: Path) -> None:
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web", "--list")
    assert done.returncode == 0 and pulumi_calls(calls) == []
    assert "skriptoteket-web:digest3" in done.stdout
    done, calls = scripts_rollback(tmp_path / "..", "skriptoteket-web", "--undo")
    assert done.returncode == 0
    assert pulumi_calls(calls)[-2:] == [
        ["config", "rm", "--path", "imageOverrides.skriptoteket-web"],
        ["preview"],
    ]


@pytest.mark.parametrize("service", ["-oProxyCommand=x", "web;reboot", "$(reboot)", ""])
def test_a_hostile_service_name_runs_nothing(tmp_path: Path, service: str) -> None:
    done, calls = scripts_rollback(tmp_path, service)
    # argparse itself refuses one that looks like an option.
    assert done.returncode == 2, done.stderr
    assert "nothing was run" in done.stderr or "error: the following arguments" in done.stderr
    assert calls == []


def test_an_unreachable_hemma_changes_nothing(tmp_path: Path) -> None:
    done, calls = scripts_rollback(tmp_path, "skriptoteket-web", SSH_MODE="down")
    assert done.returncode == 3
    assert "cannot reach Hemma over ssh" in done.stderr
    assert pulumi_calls(calls) == []


def test_the_repository_is_the_reference_without_its_tag() -> None:
    assert rollback.repository_of("skriptoteket-web:digest5") == "skriptoteket-web"
    assert rollback.repository_of("registry:5000/app:1.2") == "registry:5000/app"
    assert rollback.repository_of("registry:5000/app") == "registry:5000/app"
    assert rollback.repository_of("ollama/ollama:0.5.7@sha256:ab") == "ollama/ollama"


@pytest.mark.tools
def test_on_the_engine_it_finds_the_labelled_copy_and_the_build_before(
    tmp_path: Path, engine: Engine, busybox_image: str
) -> None:
    """The remote commands as a real docker answers them: a start-first container
    (labelled, SERVICE-DIGEST) runs the newest of three builds."""
    repository = "hemma-test/rollback-web"
    built = []
    for number in (1, 2, 3):
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "Dockerfile").write_text(f"FROM {busybox_image}\nLABEL n={number}\n")
            engine.docker("build", "--quiet", "--tag", f"{repository}:d{number}", context)
        built.append(f"{repository}:d{number}")
        time.sleep(1.1)  # docker image ls orders by creation in whole seconds
    engine.docker("tag", f"{repository}:d3", f"{repository}:hemma")
    name = "rollback-web-0123456789ab"
    engine.docker(
        "run", "-d", "--name", name, "--label", "education.hule.hemma.service=rollback-web",
        f"{repository}:d3", "sleep", "300",
    )  # fmt: skip
    try:
        done, calls = scripts_rollback(
            tmp_path, "rollback-web", SSH_MODE="local", DOCKER_HOST=engine.host,
            DOCKER_CONFIG=str(tmp_path),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert pulumi_calls(calls)[0][-1] == f"{repository}:d2"
        assert f"{repository}:d3" in done.stdout and "(running)" in done.stdout
    finally:
        engine.docker("rm", "--force", name, check=False)
        engine.docker("image", "rm", *built, f"{repository}:hemma", check=False)
