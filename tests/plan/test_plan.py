"""The plan anyone can run: ``scripts/plan`` on a fresh copy, with no Pulumi CLI, no
server, no credentials and no app checkouts, and ``scripts/plan diff`` between
configs, plan files and git revisions."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from plan import diff, report
from plan.cli import make_config, make_plan
from plan.document import document, known_secrets
from plan.runner import evaluate
from plan.stackconfig import PLACEHOLDER_HOST_KEY, PLACEHOLDER_PREFIX

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
ROUTES = {
    "skriptoteket.hule.education": ("skriptoteket-web:8000", False),
    "huleedu.hule.education": ("huleedu_bff_teacher_service:4101", False),
    "api.huleedu.hule.education": ("huleedu_api_gateway_service:8080", False),
    "ws.huleedu.hule.education": ("huleedu_websocket_service:8080", False),
    "grafana.hemma.hule.education": ("grafana:3000", False),
    "prometheus.hemma.hule.education": ("prometheus:9090", True),
    "jaeger.hemma.hule.education": ("jaeger:16686", True),
}
CONTAINER = "docker:index/container:Container"
MARK = "MARKED-SECRET-VALUE"
MARKED_SECRETS = {
    "smtpPassword": f"{MARK}-smtp-0123456789",
    "anthropicApiKey": f"sk-ant-{MARK}-anthropic",
    "openaiApiKey": f"sk-{MARK}-openai",
    "sshPrivateKey": (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{MARK}-key\n-----END OPENSSH PRIVATE KEY-----\n"
    ),
}


def path_without_pulumi() -> str:
    """The PATH, less every directory that holds a ``pulumi``."""
    kept = [
        entry
        for entry in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if entry and not (Path(entry) / "pulumi").exists()
    ]
    path = os.pathsep.join(kept or ["/usr/bin", "/bin"])
    assert shutil.which("pulumi", path=path) is None
    return path


def bare_env(home: Path) -> dict[str, str]:
    """No Pulumi CLI, no backend, no passphrase, no Docker or SSH settings of ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "DOCKER_", "SSH_", "HEMMA_", "PYTHON"))
    }
    env.update(PATH=path_without_pulumi(), HOME=str(home))
    return env


def copy_checkout(source: Path, target: Path) -> None:
    """The checkout's files as a fresh clone would have them (and the uncommitted ones):
    no venv, no caches, no app checkouts beside it."""
    listed = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        shutil.copytree(
            source,
            target,
            ignore=shutil.ignore_patterns("venv", ".git", "__pycache__", ".*_cache", ".hypothesis"),
        )
        return
    for name in listed.stdout.decode().split("\0"):
        if not name or (name.startswith(".") and not name.startswith((".ci/", ".gitignore"))):
            continue
        origin = source / name
        if not origin.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target / name)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fresh")
    checkout = base / "hemma"
    copy_checkout(ROOT, checkout)
    assert not (checkout / "venv").exists()
    assert not (base / "skriptoteket").exists() and not (base / "huleedu").exists()
    return checkout


def plan(
    checkout: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "plan", *args],
        cwd=checkout,
        env=env or bare_env(checkout.parent),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def routes_in(text: str) -> dict[str, tuple[str, bool]]:
    """The routing table's rows: host -> (container:port, basic auth)."""
    section = text[text.index("Routes") :].split("\n\n", 1)[0]
    found = {}
    for line in section.splitlines()[1:]:
        match = re.fullmatch(r"\s+(\S+)\s+->\s+(\S+:\d+)(\s+basic auth)?\s*", line)
        if match:
            found[match.group(1)] = (match.group(2), bool(match.group(3)))
    return found


@pytest.fixture(scope="module")
def default_plan() -> dict[str, Any]:
    return make_plan(ROOT, "hemma", [], [])


def image_override(container: str, image: str) -> str:
    return f"imageOverrides={json.dumps({container: image})}"


# --- scripts/plan -----------------------------------------------------------------------


def test_the_wrapper_passes_shellcheck() -> None:
    assert shutil.which("shellcheck"), "shellcheck is required (scripts/test installs it)"
    done = subprocess.run(
        ["shellcheck", str(ROOT / "scripts" / "plan")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wrapper_plans_a_fresh_copy_without_pulumi(fresh: Path) -> None:
    env = bare_env(fresh.parent)
    env["HEMMA_VENV"] = str(PYTHON.parent.parent)
    done = subprocess.run(
        ["bash", str(fresh / "scripts" / "plan"), "--json", "wrapper.json"],
        cwd=fresh.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert routes_in(done.stdout) == ROUTES
    assert "Placeholders for the values only the operator holds" in done.stdout
    assert not (fresh / "venv").exists()
    assert (fresh.parent / "wrapper.json").is_file(), "a file is named from where one stands"


FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  "-m venv "*) mkdir -p "$3/bin"; cp "$0" "$3/bin/python";;
esac
exit 0
"""


def test_the_first_run_says_what_it_sets_up_and_a_warm_run_skips_pip(tmp_path: Path) -> None:
    """pip costs a second even with nothing to do: it runs only when requirements.txt
    differs from what the venv was set up with. python is a stand-in that logs."""
    checkout = tmp_path / "hemma"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "plan", checkout / "scripts" / "plan")
    (checkout / "requirements.txt").write_text("pulumi==3.0.0\n")
    bin_dir, log = tmp_path / "bin", tmp_path / "python.log"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(FAKE_PYTHON.format(log=log))
    (bin_dir / "python3").chmod(0o755)
    env = {**bare_env(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}

    def run_plan() -> tuple[list[str], str]:
        log.write_text("")
        done = subprocess.run(
            ["bash", str(checkout / "scripts" / "plan")],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return log.read_text().splitlines(), done.stderr

    calls, said = run_plan()
    assert "first run: setting up venv" in said
    assert [c.split(" ")[1] for c in calls if c.startswith("-m ")] == ["venv", "pip", "plan"]
    calls, said = run_plan()
    assert said == "" and calls == ["-m plan"], "warm: no venv, no pip"
    (checkout / "requirements.txt").write_text("pulumi==3.1.0\n")
    calls, _ = run_plan()
    assert calls[0].startswith("-m pip install"), "a changed requirements.txt installs again"


def test_the_plan_reads_the_stack_file_and_prints_every_section(fresh: Path) -> None:
    done = plan(fresh, "--json", str(fresh.parent / "plan.json"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert routes_in(out) == ROUTES
    assert "Routes (nginx-proxy, HTTPS):" in out
    local = plan(fresh, "--stack", "local")
    assert local.returncode == 0, local.stderr
    assert "Routes (nginx-proxy, HTTP):" in local.stdout, "the local stack has no TLS"
    for section in (
        "Routes",
        "Containers:",
        "Databases and roles",
        "Host units",
        "Backups:",
        "Public",
    ):
        assert section in out
    placeholders = out.splitlines()[2]
    assert "sshHostKey (secret)" in placeholders
    for key in ("sshPrivateKey", "smtpPassword", "anthropicApiKey", "openaiApiKey"):
        assert f"{key} (secret)" in placeholders
    assert re.search(
        r"^\s+skriptoteket-web\n\s+start-first, as skriptoteket-web-[0-9a-f]{12}\n\s+image\s",
        out,
        re.MULTILINE,
    )
    public = out[out.index("Public") :]
    assert re.search(r"nginx-proxy\s+0\.0\.0\.0:443->443/tcp", public)
    assert "5432" not in public, "shared-postgres is published on 127.0.0.1 only"
    document = json.loads((fresh.parent / "plan.json").read_text())
    assert document["outputs"]["routes"]["skriptoteket.hule.education"]["port"] == 8000


def test_a_bad_config_prints_the_one_line_error_and_exits_1(fresh: Path) -> None:
    done = plan(fresh, "--config", "acmeEmial=admin@hule.education")
    assert done.returncode == 1
    assert done.stderr == "hemma:acmeEmial: unknown config key (did you mean hemma:acmeEmail?)\n"
    assert done.stdout == ""


def test_an_operator_secret_set_without_secret_is_refused_as_preview_does(fresh: Path) -> None:
    done = plan(fresh, "--config", "smtpPassword=abc")
    assert done.returncode == 1
    assert done.stderr.startswith("hemma:smtpPassword: must be set as a secret")


def test_bad_arguments_exit_1(fresh: Path) -> None:
    assert plan(fresh, "--config", "no-equals-sign").returncode == 1
    assert plan(fresh, "--no-such-flag").returncode == 1
    assert plan(fresh, "--stack", "nope").returncode == 1
    assert plan(fresh, "diff", "no-such-file", "HEAD").returncode == 1


def test_no_secret_reaches_stdout_or_the_json(fresh: Path) -> None:
    output = fresh.parent / "secrets.json"
    secrets = [f"--secret={key}={value}" for key, value in MARKED_SECRETS.items()]
    done = plan(fresh, *secrets, "--json", str(output))
    assert done.returncode == 0, done.stderr
    written = output.read_text()
    for text in (done.stdout, done.stderr, written):
        assert MARK not in text
        assert PLACEHOLDER_PREFIX not in text
        assert PLACEHOLDER_HOST_KEY.split()[1] not in text
    assert json.loads(written)["warnings"] == []


def test_no_generated_or_placeholder_secret_is_in_the_plan() -> None:
    secrets = [f"{key}={value}" for key, value in MARKED_SECRETS.items()]
    project, config = make_config(ROOT, "hemma", [], secrets)
    evaluation = evaluate(
        config.values, config.secret_keys, root=ROOT, project=project, stack="hemma"
    )
    plan_document = document(evaluation, config)
    known = known_secrets(evaluation, config)
    assert any(MARK in secret for secret in known)
    assert len(known) > len(MARKED_SECRETS), "the generated passwords are known too"
    text = json.dumps(plan_document) + report.render(plan_document)
    assert not [secret for secret in known if secret in text]
    assert plan_document["warnings"] == []


# --- the JSON -----------------------------------------------------------------------------


def test_the_json_holds_every_resource_with_its_options(default_plan: dict[str, Any]) -> None:
    resources = default_plan["resources"]
    assert len({r["urn"] for r in resources}) == len(resources)
    for resource in resources:
        assert {"type", "name", "urn", "parent", "provider", "inputs", "options"} <= set(resource)
        assert {
            "protect",
            "retainOnDelete",
            "deleteBeforeReplace",
            "importId",
            "ignoreChanges",
            "dependencies",
        } <= set(resource["options"])
    containers = {r["inputs"]["name"]: r for r in resources if r["type"] == CONTAINER}
    start_first = {name for name in containers if re.fullmatch(r".+-[0-9a-f]{12}", name)}
    assert start_first >= {
        "skriptoteket-web-" + name[-12:] for name in start_first if "skript" in name
    }
    for name, container in containers.items():
        assert container["options"]["deleteBeforeReplace"] is (name not in start_first), name
    assert any(r["options"]["protect"] for r in resources)
    assert set(default_plan["secretOutputs"]) >= {"postgresAdminPassword"}
    for name in default_plan["secretOutputs"]:
        assert str(default_plan["outputs"][name]).startswith("[secret:")


def test_the_json_holds_the_generated_files(default_plan: dict[str, Any]) -> None:
    files = default_plan["files"]
    installs = [
        r["name"].removesuffix("-install")
        for r in default_plan["resources"]
        if r["type"] == "command:remote:Command" and r["name"].endswith("-install")
    ]
    assert installs and sorted(files["hostUnits"]) == sorted(installs)
    paths = {
        path.rsplit("/", 1)[-1]
        for group in files["hostUnits"].values()
        if isinstance(group, dict)
        for path in group
    }
    assert set(default_plan["outputs"]["hostUnits"]) <= paths
    timers = [
        content["content"]
        for group in files["hostUnits"].values()
        if isinstance(group, dict)
        for path, content in group.items()
        if path.endswith(".timer")
    ]
    assert timers and all("OnCalendar=" in timer for timer in timers)
    uploads = {
        name: entry for name, entry in files["containers"].items() if isinstance(entry, dict)
    }
    assert uploads, "some container gets plain uploads (e.g. prometheus.yml)"
    for entry in uploads.values():
        for content in entry.values():
            assert isinstance(content["content"], str)


# --- plan diff ----------------------------------------------------------------------------


def actions(comparison: diff.Comparison) -> set[tuple[str, str, str]]:
    return {(c.action, c.name, c.type) for c in comparison.changes}


def test_a_new_image_for_one_service_replaces_its_container_and_migration(
    default_plan: dict[str, Any],
) -> None:
    override = make_plan(
        ROOT, "hemma", [image_override("skriptoteket-web", "ghcr.io/hule/skriptoteket:1.2.3")], []
    )
    comparison = diff.compare(default_plan, override)
    assert actions(comparison) == {
        ("replace", "skriptoteket-web", CONTAINER),
        ("replace", "skriptoteket-web-migrate", "command:remote:Command"),
        ("replace", "skriptoteket-web-drain", "command:remote:Command"),
        ("replace", "skriptoteket-web-name", "random:index/randomId:RandomId"),
        # Built by a command before, pulled now: another type, so another URN.
        ("create", "skriptoteket-web-image", "docker:index/remoteImage:RemoteImage"),
        ("delete", "skriptoteket-web-image", "command:local:Command"),
    }
    text = diff.render(comparison, "before", "after")
    assert "replace skriptoteket-web (docker:index/container:Container): image, name\n" in text
    assert (
        "replace skriptoteket-web-migrate (command:remote:Command): "
        "triggers (also changes create)\n" in text
    )
    assert "1 to create, 4 to replace, 0 to update, 1 to delete" in text


def test_the_same_plan_has_no_changes(default_plan: dict[str, Any]) -> None:
    again = make_plan(ROOT, "hemma", [], [])
    comparison = diff.compare(default_plan, again)
    assert comparison.changes == []
    assert "no changes" in diff.render(comparison, "a", "b")


def test_order_only_differences_are_no_change(default_plan: dict[str, Any]) -> None:
    shuffled = copy.deepcopy(default_plan)
    touched = 0
    for resource in shuffled["resources"]:
        if resource["type"] != CONTAINER:
            continue
        for key in ("ports", "envs"):
            value = resource["inputs"].get(key)
            if isinstance(value, list) and len(value) > 1:
                value.reverse()
                touched += 1
    assert touched
    assert diff.compare(default_plan, shuffled).changes == []


def test_a_changed_secret_is_seen_through_its_hash() -> None:
    before = make_plan(ROOT, "hemma", [], ["smtpPassword=first-smtp-password"])
    after = make_plan(ROOT, "hemma", [], ["smtpPassword=second-smtp-password"])
    comparison = diff.compare(before, after)
    # Every container that is handed the password, in its env or in a file.
    assert comparison.changes
    assert {(c.action, c.type) for c in comparison.changes} == {("replace", CONTAINER)}
    assert all(set(c.replacing) <= {"envs", "uploads"} for c in comparison.changes)
    assert any(c.replacing == ["envs"] for c in comparison.changes)
    text = diff.render(comparison, "a", "b")
    assert "smtp-password" not in text
    # The entry is hashed on its own: the variable's name shows, its value never.
    assert re.search(r"envs: - 'EMAIL_SMTP_PASSWORD=\[secret:[0-9a-f]{12}\]'", text)
    assert re.search(r"envs: \+ 'EMAIL_SMTP_PASSWORD=\[secret:[0-9a-f]{12}\]'", text)


def test_a_protected_resource_that_disappears_is_flagged(
    default_plan: dict[str, Any], tmp_path: Path
) -> None:
    protected = next(r for r in default_plan["resources"] if r["options"]["protect"])
    without = copy.deepcopy(default_plan)
    without["resources"] = [r for r in without["resources"] if r["urn"] != protected["urn"]]
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(default_plan))
    new.write_text(json.dumps(without))
    done = plan(ROOT, "diff", "--exit-code", str(old), str(new))
    assert done.returncode == 2, done.stderr
    line = f"delete (PROTECTED: up will refuse) {protected['name']} ({protected['type']})"
    assert line in done.stdout.splitlines()
    assert "!! 1 protected resource(s) would be deleted or replaced" in done.stdout
    unchanged = plan(ROOT, "diff", "--exit-code", str(old), str(old))
    assert unchanged.returncode == 0 and "no changes" in unchanged.stdout
    assert plan(ROOT, "diff", str(old), str(new)).returncode == 0


def test_renaming_a_protected_volume_is_flagged_as_a_refused_replacement(
    default_plan: dict[str, Any],
) -> None:
    renamed = make_plan(ROOT, "hemma", ['postgres={"dataVolume": "shared-postgres-data-2"}'], [])
    flagged = [c for c in diff.compare(default_plan, renamed).changes if c.protected]
    assert [(c.action, c.type, c.replacing) for c in flagged] == [
        ("replace", "docker:index/volume:Volume", ["name"])
    ]


def _commit(repo: Path, message: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "add", "-A"], check=True, capture_output=True, text=True
    )
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=plan test",
            "-c",
            "user.email=plan@test.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def history(tmp_path: Path) -> Iterator[Path]:
    """A repository of this checkout with two commits: the second pins Grafana's image."""
    repo = tmp_path / "hemma"
    copy_checkout(ROOT, repo)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _commit(repo, "as it is")
    path = repo / "Pulumi.hemma.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["hemma:imageOverrides"] = {"grafana": "grafana/grafana:99.0.0"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _commit(repo, "pin grafana")
    yield repo


def worktrees(repo: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in listed.stdout.splitlines() if line.startswith("worktree ")]


def test_a_diff_between_two_git_revisions(history: Path) -> None:
    done = plan(history, "diff", "--exit-code", "HEAD~1", "HEAD")
    assert done.returncode == 2, done.stderr
    lines = done.stdout.splitlines()
    assert "replace observability-grafana (docker:index/container:Container): image" in lines
    assert (
        "replace observability-grafana-image (docker:index/remoteImage:RemoteImage): name" in lines
    )
    changed = [line for line in lines if re.match(r"(create|replace|update|delete) ", line)]
    assert all("grafana" in line for line in changed), changed
    assert len(worktrees(history)) == 1, "the temporary worktrees are gone"
