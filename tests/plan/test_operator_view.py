"""The plan as a new operator meets it: the working tree diffed, every change shown,
config set one field at a time, and no traceback at any edge."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from plan import perhost, policies
from plan.cli import make_evaluation
from tests.plan.test_plan import (
    PYTHON,
    ROOT,
    _commit,
    bare_env,
    copy_checkout,
    fresh,
    plan,
    worktrees,
)

__all__ = ["fresh"]
NEW_GRAFANA = "grafana2.hemma.hule.education"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository of this checkout with one commit, and an uncommitted edit of the
    stack file: Grafana's hostname. The tests only read it (a diff's worktree comes
    and goes), so the module shares one."""
    checkout = tmp_path_factory.mktemp("repo") / "hemma"
    copy_checkout(ROOT, checkout)
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    _commit(checkout, "as it is")
    path = checkout / "Pulumi.hemma.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["hemma:hostnames"]["grafana"] = NEW_GRAFANA
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield checkout


def test_a_bare_diff_compares_head_with_the_uncommitted_edit(repo: Path) -> None:
    done = plan(repo, "diff", "--exit-code")
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("plan diff: HEAD (git revision) -> the working tree\n")
    assert "replace observability-grafana (docker:index/container:Container): envs" in done.stdout
    assert "plan diff: planning HEAD..." in done.stderr, "progress while it plans"
    dotted = plan(repo, "diff", "HEAD", ".")
    assert dotted.stdout == done.stdout
    assert len(worktrees(repo)) == 1, "the temporary worktree is gone"


@pytest.fixture(scope="module")
def diffed(repo: Path) -> str:
    """``scripts/plan diff`` of HEAD and the edit, as it prints it."""
    done = plan(repo, "diff")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_diff_says_which_dns_records_to_add_and_remove(diffed: str) -> None:
    lines = [line.strip() for line in diffed.splitlines()]
    assert f"DNS: add an A/AAAA record for {NEW_GRAFANA} (to Hemma)" in lines
    assert "DNS: remove the record for grafana.hemma.hule.education" in lines
    assert f"dnsRecords: + '{NEW_GRAFANA}'" in lines, "the output change itself"


def test_uploads_are_diffed_line_by_line_under_their_file_names(diffed: str) -> None:
    """Prometheus probes the public hosts: its prometheus.yml changes with the hostname."""
    lines = [line.strip() for line in diffed.splitlines()]
    probe = [line for line in lines if line.startswith("uploads: /etc/prometheus/prometheus.yml: ")]
    assert any(line.endswith(f"https://{NEW_GRAFANA}/api/health") for line in probe), probe
    assert not any(line.startswith('uploads: - {"content"') for line in lines)


def test_full_shows_every_line_whole(repo: Path, diffed: str) -> None:
    cut = diffed
    whole = plan(repo, "diff", "--full").stdout
    assert "..." in cut
    longest = max(len(line) for line in whole.splitlines())
    assert longest > max(len(line) for line in cut.splitlines())
    assert len(whole.splitlines()) >= len(cut.splitlines())


def test_one_field_of_an_object_is_set_as_pulumi_config_set_path_does(fresh: Path) -> None:
    done = plan(fresh, "--config", "postgres.hostPort=443", "--quiet")
    assert done.returncode == 1
    assert done.stderr == (
        "hemma:postgres.hostPort: port 443 is already used by nginx-proxy (HTTPS)\n"
    ), "the documented key is known, and the rest of postgres stays as the stack file has it"
    moved = plan(fresh, "--config", "postgres.hostPort=5433", "--json", "-")
    assert moved.returncode == 0, moved.stderr
    config = json.loads(moved.stdout)["config"]
    postgres = json.loads(config["postgres"])
    assert postgres["hostPort"] == "5433"
    assert postgres["containerName"] == "shared-postgres", "merged into the stack file's object"


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("postgres.hostPrt=5", "hemma:postgres.hostPrt: unknown config key "
         "(did you mean hemma:postgres.hostPort?)"),
        ("postgress.hostPort=5", "hemma:postgress: unknown config key "
         "(did you mean hemma:postgres?)"),
        ("postgres={hostPort: 1}", "hemma:postgres: must be an object, and this is not "
         "JSON (or set one field: KEY.FIELD=VALUE)"),
        ("hostnames.grafana.x=1", "--config hostnames.grafana.x: grafana is not an object, "
         "so it has no fields"),
    ],
)  # fmt: skip
def test_a_bad_key_gets_one_line_that_helps(fresh: Path, setting: str, line: str) -> None:
    done = plan(fresh, "--config", setting, "--quiet")
    assert done.returncode == 1
    assert done.stderr == line + "\n"


def test_json_dash_writes_the_plan_to_stdout(fresh: Path) -> None:
    done = plan(fresh, "--json", "-")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stack"] == "hemma"
    assert not (fresh / "-").exists()


def test_json_into_a_missing_directory_is_one_line(fresh: Path) -> None:
    done = plan(fresh, "--json", "no/such/dir/plan.json")
    assert done.returncode == 1
    assert done.stderr.startswith("--json no/such/dir/plan.json: no such directory ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_yaml_error_names_its_line_and_column(tmp_path: Path) -> None:
    checkout = tmp_path / "hemma"
    copy_checkout(ROOT, checkout)
    path = checkout / "Pulumi.hemma.yaml"
    lines = path.read_text().splitlines()
    at = lines.index("  hemma:proxy:")
    lines[at] = "  hemma:proxy: [unclosed"
    path.write_text("\n".join(lines) + "\n")
    done = plan(checkout, "--quiet")
    assert done.returncode == 1
    assert done.stderr.startswith(f"Pulumi.hemma.yaml:{at + 2}:"), done.stderr
    assert ": not YAML: " in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_help_lists_the_diff_and_the_stack_variable(fresh: Path) -> None:
    done = plan(fresh, "--help")
    assert done.returncode == 0
    assert "scripts/plan diff --help" in " ".join(done.stdout.split())
    assert "HEMMA_STACK" in done.stdout
    assert "working tree" in " ".join(plan(fresh, "diff", "--help").stdout.split())


def test_hemma_stack_selects_the_stack_file(fresh: Path) -> None:
    env = {**bare_env(fresh.parent), "HEMMA_STACK": "local"}
    done = plan(fresh, "--json", "-", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stack"] == "local"


def test_ctrl_c_stops_a_diff_at_once_and_leaves_no_worktree(repo: Path) -> None:
    started = subprocess.Popen(
        [str(PYTHON), "-m", "plan", "diff", "HEAD", "HEAD"],
        cwd=repo,
        env=bare_env(repo.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while len(worktrees(repo)) == 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(worktrees(repo)) == 2, "the diff is planning a revision"
    os.killpg(started.pid, signal.SIGINT)
    stopped = time.monotonic()
    _, stderr = started.communicate(timeout=20)
    assert started.returncode == 130, stderr
    assert time.monotonic() - stopped < 10
    assert stderr.rstrip().endswith("plan: interrupted")
    assert "Traceback" not in stderr
    assert len(worktrees(repo)) == 1, "the temporary worktree is gone"


def test_the_policy_pack_runs_over_the_plan_offline(fresh: Path) -> None:
    done = plan(fresh, "--policy", "--quiet")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"Policies: 10 of 10 pass over \d+ resources\n", done.stderr), done.stderr


def test_a_mandatory_violation_fails_the_offline_policy_run() -> None:
    evaluation, _ = make_evaluation(ROOT, "hemma", [], [])
    resources = policies.as_resources(evaluation.resources)
    volume = next(r for r in resources if r.props.get("name") == "shared-postgres-data")
    tampered = [replace(r, protect=False) if r is volume else r for r in resources]
    lines, violated = policies.report(tampered)
    assert violated
    assert lines[0] == (
        "mandatory data-is-protected: shared-postgres-data is not protected from deletion"
    )
    assert lines[-1].startswith("Policies: 9 of 10 pass over ")
    assert policies.report(resources)[1] is False


def test_the_test_command_prints_its_help_and_changes_nothing(fresh: Path) -> None:
    done = subprocess.run(
        ["bash", str(fresh / "scripts" / "test"), "--help"],
        capture_output=True,
        text=True,
        timeout=10,
        env=bare_env(fresh.parent),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: bash scripts/test [--fast] [PYTEST ARGS...]")
    assert "--fast" in done.stdout
    assert not (fresh / "venv").exists(), "nothing was set up"


def test_a_checkout_without_the_policy_pack_still_plans(tmp_path: Path) -> None:
    checkout = tmp_path / "hemma"
    copy_checkout(ROOT, checkout)
    shutil.rmtree(checkout / "policy")
    assert plan(checkout, "--quiet").returncode == 0
    done = plan(checkout, "--policy", "--quiet")
    assert done.returncode == 1
    assert done.stderr == "--policy: the policy pack is not here (No module named 'policy')\n"


def test_a_plain_env_entry_shows_plainly_beside_the_secret_ones(fresh: Path) -> None:
    """skriptoteket-web's env holds DATABASE_URL, a secret: the entry is hashed on its own,
    and LOG_LEVEL=debug added with extraEnv shows as it is."""
    with_debug = 'extraEnv={"skriptoteket-web":{"LOG_LEVEL":"debug"}}'
    base = fresh.parent / "base.json"
    edited = fresh.parent / "edited.json"
    assert plan(fresh, "--quiet", "--json", str(base)).returncode == 0
    assert plan(fresh, "--quiet", "--json", str(edited), "--config", with_debug).returncode == 0
    done = plan(fresh, "diff", str(base), str(edited))
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert "envs: + 'LOG_LEVEL=debug'" in lines, done.stdout
    envs = next(
        r["inputs"]["envs"]
        for r in json.loads(edited.read_text())["resources"]
        if r["name"] == "skriptoteket-web"
    )
    assert any(re.fullmatch(r"DATABASE_URL=\[secret:[0-9a-f]{12}\]", e) for e in envs), envs
    secret = plan(fresh, "--json", "-", "--secret", with_debug)
    envs = next(
        r["inputs"]["envs"]
        for r in json.loads(secret.stdout)["resources"]
        if r["name"] == "skriptoteket-web"
    )
    assert any(re.fullmatch(r"LOG_LEVEL=\[secret:[0-9a-f]{12}\]", e) for e in envs), (
        "extraEnv set as a secret is masked entry by entry"
    )
    assert "debug" not in json.dumps(envs)


def test_nginx_proxy_s_per_host_files_are_diffed_with_each_password_masked(
    fresh: Path,
) -> None:
    """A body-size edit and a basic-auth user edit change the files the reload step
    carries on its secret stdin: each shows under its path, line by line, and no
    password hash is printed."""
    base = fresh.parent / "base.json"
    edited = fresh.parent / "edited.json"
    edits = ["--config", "proxy.defaultMaxBodySize=20m", "--config", "proxy.basicAuthUser=ops"]
    assert plan(fresh, "--quiet", "--json", str(base)).returncode == 0
    assert plan(fresh, "--quiet", "--json", str(edited), *edits).returncode == 0
    done = plan(fresh, "diff", str(base), str(edited))
    lines = [line.strip() for line in done.stdout.splitlines()]
    host = "skriptoteket.hule.education"
    assert f"stdin: vhost.d/{host}: +client_max_body_size 20m;" in lines, done.stdout
    assert f"stdin: vhost.d/{host}: -client_max_body_size 10m;" in lines
    auth = [line for line in lines if line.startswith("stdin: htpasswd/")]
    assert auth and all(
        re.fullmatch(r"stdin: htpasswd/[a-z0-9.-]+: [+-](admin|ops):\[secret:[0-9a-f]{12}\]", a)
        for a in auth
    ), auth
    assert "$apr1$" not in done.stdout and "{SHA}" not in done.stdout
    files = next(
        r["inputs"]["stdin"] for r in json.loads(edited.read_text())["resources"]
        if r["name"] == "proxy-reload"
    )  # fmt: skip
    assert {f["file"].split("/")[0] for f in files} == {"vhost.d", "htpasswd"}
    shown = {
        r["name"] for r in json.loads(edited.read_text())["resources"]
        if isinstance(r["inputs"].get("stdin"), list)
    }  # fmt: skip
    assert shown == perhost.STEPS, "only the two proxy steps' stdin is read as files"


def test_a_manifest_on_any_other_step_s_secret_stdin_stays_one_hash() -> None:
    manifest = "vhost.d/x.example " + base64.b64encode(b"secret body").decode() + "\n"
    assert perhost.per_host_files("skriptoteket-migrate", manifest, str) is None
    assert perhost.per_host_files("proxy-reload", manifest, str) == [
        {"file": "vhost.d/x.example", "content": "secret body"}
    ]
    assert perhost.per_host_files("proxy-reload", "htpasswd/x.example\n", str) is None


BASE_REVISION = "a07f2c9"
"""The landing of start-first deploys: the oldest revision ``plan diff`` promises to
plan. The planner runs over an older revision's components/, so it may import from
components/ only what that revision already had."""


def test_the_planner_imports_from_components_only_what_older_revisions_have() -> None:
    imported: set[tuple[str, str]] = set()
    for path in (ROOT / "plan").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components"):
                imported |= {(str(node.module), alias.name) for alias in node.names}
            if isinstance(node, ast.Import):
                imported |= {(a.name, "") for a in node.names if a.name.startswith("components")}
    assert imported == {
        ("components.config.sources", "NO_CHECKOUT"),
        ("components.model.rollout", "declared_service"),
        ("components.config.reading", "parse"),
        ("components.config.stack", "SECRET_KEYS"),
        ("components.config.stack", "StackConfig"),
        ("components.config.stack", "object_keys"),
        ("components.main", ""),
    }, "a new import from components/ must exist in BASE_REVISION too"
    has_base = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{BASE_REVISION}^{{commit}}"],
        capture_output=True, check=False,
    )  # fmt: skip
    if has_base.returncode != 0:
        shallow = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert shallow.stdout.strip() == "true", f"{BASE_REVISION} is not in the history"
        warnings.warn(f"a shallow clone: {BASE_REVISION}'s files not checked", stacklevel=1)
        return
    for module, name in imported:
        file = module.replace(".", "/") + ".py"
        old = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASE_REVISION}:{file}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert old.returncode == 0, f"{BASE_REVISION}:{file}: {old.stderr.strip()}"
        assert not name or re.search(rf"^(def|class)? *{name}\b", old.stdout, re.M), (
            f"{BASE_REVISION}:{file} has no {name}"
        )
