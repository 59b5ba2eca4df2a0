"""The drift check as the program declares it: its units, the manifest of every file
the unit groups install, the declared grants and containers; the units and the
script checked with systemd-analyze and shellcheck.

The script itself runs against a real PostgreSQL, engine and private root in
``test_drift_on_engine.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components.host.drift import (
    CONTAINERS,
    DRIFT_JOB,
    DRIFT_SCRIPT,
    GRANTS,
    MANIFEST,
    drift_argv,
    expected_grants,
    manifest,
    manifest_holds_secret,
    manifest_line,
)
from components.host.unit_files import UnitGroup, install_script
from components.model.host import HostFile
from components.model.rollout import SERVICE_LABEL, declared_service
from tests.harness import OPERATOR_SECRETS, Program, run_program, site_config, with_classhub
from tests.host.test_units import (
    MANAGED_GPU,
    Sandbox,
    config_with,
    exec_paths,
    sandbox,
    unit_groups,
)

__all__ = ["sandbox"]

SCRIPT = Path(__file__).resolve().parents[2] / "components" / "host" / "files" / f"{DRIFT_JOB}.sh"
PUT = re.compile(r"^put (\S+) (\d{4}) ?(\S*)(?:\s+#.*)?$", re.M)


def installed(program: Program) -> dict[str, dict[str, str]]:
    """Unit group -> path -> content, read off each install command as the engine has it."""
    groups = {}
    for command in program.of_type("command:remote:Command"):
        if not command.name.endswith("-install"):
            continue
        files = {
            path.strip("'"): base64.b64decode(content).decode()
            for path, _, content in PUT.findall(command.inputs["create"])
            if content
        }
        groups[command.name.removesuffix("-install")] = files
    return groups


def listed(text: str) -> dict[str, str]:
    """The manifest as path -> sha256 (no path of the site holds a character to escape)."""
    entries = {}
    for line in text.splitlines():
        digest, _, path = line.partition("  ")
        assert re.fullmatch(r"[0-9a-f]{64}", digest), line
        entries[path] = digest
    return entries


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_manifest_holds_every_installed_file_but_itself_and_no_secret_file() -> None:
    program = run_program(with_classhub(site_config()))
    groups = installed(program)
    drift = groups.pop(DRIFT_JOB)
    entries = listed(drift[MANIFEST])
    others = {path: content for files in groups.values() for path, content in files.items()}
    own = {path: content for path, content in drift.items() if path != MANIFEST}
    assert {"/etc/systemd/system/hemma-backup.service", "/usr/local/lib/hemma/hemma-backup.sh",
            "/usr/local/lib/hemma/drill-probes", "/etc/systemd/system/classhub-retention.timer",
            DRIFT_SCRIPT, GRANTS, CONTAINERS,
            f"/etc/systemd/system/{DRIFT_JOB}.service"} <= set(entries)  # fmt: skip
    assert entries == {path: sha256(content) for path, content in {**others, **own}.items()}
    assert MANIFEST not in entries, "a file cannot hold its own sha256"
    backup = program.named("hemma-backup-install").inputs["create"]
    assert "put /etc/hemma/restic.env 0600  # content from stdin" in backup
    assert "/etc/hemma/restic.env" not in entries, "its content is secret: no plain copy to hash"
    assert all(path.startswith("/") for path in entries)


def test_the_manifest_covers_the_gpu_servers_and_their_relays_when_managed() -> None:
    groups = unit_groups(config_with(gpu=MANAGED_GPU))
    drift = groups[-1]
    assert drift.name == DRIFT_JOB, "last: it hashes what every other group installs"
    entries = listed(next(f.content for f in drift.files if f.path == MANIFEST))
    for name in ("tabby.service", "llama-server-rocm.service", "hemma-relay-llama.socket"):
        assert f"/etc/systemd/system/{name}" in entries


def test_the_manifest_is_the_same_on_every_run_and_changes_with_a_file() -> None:
    def drift_files(config: dict[str, object]) -> dict[str, str]:
        return installed(run_program(config, OPERATOR_SECRETS, fresh=True))[DRIFT_JOB]

    first, second = drift_files(site_config()), drift_files(site_config())
    assert first == second, "a steady second up rewrites nothing"
    moved = drift_files({**site_config(), "smartLogs": {"keepDays": 14}})
    assert moved[MANIFEST] != first[MANIFEST]
    changed = set(listed(first[MANIFEST]).items()) ^ set(listed(moved[MANIFEST]).items())
    assert {path for path, _ in changed} == {"/etc/systemd/system/cleanup-smart-logs.service"}


def test_a_steady_second_install_changes_nothing(sandbox: Sandbox) -> None:
    drift = unit_groups(config_with())[-1]
    assert sandbox.run(install_script(drift))[-1] == f"restart {DRIFT_JOB}.timer"
    assert sandbox.run(install_script(drift))[-1] == f"start {DRIFT_JOB}.timer"


def test_a_manifest_path_with_a_backslash_or_line_end_is_escaped_as_sha256sum_does(
    tmp_path: Path,
) -> None:
    weird = tmp_path / 'a "q"\\b\nc'
    weird.write_text("content\n")
    line = manifest_line(str(weird), "content\n")
    assert line.startswith("\\") and line.count("\n") == 1
    done = subprocess.run(
        ["sha256sum", "--check", "--strict", "-"], input=line, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert manifest_line("/etc/x", "") == f"{sha256('')}  /etc/x\n"


def test_the_manifest_refuses_itself_and_a_path_installed_twice_differently() -> None:
    with pytest.raises(ValueError, match="its own sha256"):
        manifest([HostFile(MANIFEST, "")])
    with pytest.raises(ValueError, match="two unit groups install /etc/x"):
        manifest([HostFile("/etc/x", "a"), HostFile("/etc/x", "b")])
    assert manifest([HostFile("/etc/x", "a"), HostFile("/etc/x", "a")]).count("\n") == 1


def test_the_declared_grants_are_the_programs_roles_databases_and_revokes() -> None:
    program = run_program(with_classhub(site_config()))
    roles = {r.inputs["name"]: r.inputs for r in program.of_type("postgresql:index/role:Role")}
    databases = program.of_type("postgresql:index/database:Database")
    revoked = {
        g.inputs["database"]
        for g in program.of_type("postgresql:index/grant:Grant")
        if g.inputs["role"] == "public" and g.inputs["privileges"] == []
    }
    lines = installed(program)[DRIFT_JOB][GRANTS].splitlines()
    assert lines == sorted(lines, key=str.encode)
    expected = {"superuser|postgres"}
    for name, role in roles.items():
        assert role["login"] and not role["superuser"] and not role["createDatabase"]
        assert not role["createRole"] and not role["replication"]
        assert not role["bypassRowLevelSecurity"]
        expected.add(
            f"role|{name}|LOGIN,NOSUPERUSER,NOCREATEDB,NOCREATEROLE,NOREPLICATION,NOBYPASSRLS"
        )
    for database in databases:
        name, owner = database.inputs["name"], database.inputs["owner"]
        assert name in revoked, "PUBLIC's CONNECT is revoked from every database"
        expected.add(f"owner|{name}|{owner}")
        expected |= {f"{name}|database|{owner}|{p}" for p in ("CONNECT", "CREATE", "TEMPORARY")}
    assert set(lines) == expected
    assert len(databases) == 15 and len(roles) == 3


def test_a_grant_line_escapes_what_would_split_it() -> None:
    text = expected_grants({"r|1": ["d\\b\nx"]})
    assert "owner|d\\\\b\\nx|r\\|1\n" in text
    assert text.count("\n") == 6


def test_the_declared_containers_are_every_container_the_program_declares() -> None:
    program = run_program(with_classhub(site_config()))
    lines = installed(program)[DRIFT_JOB][CONTAINERS].splitlines()
    fixed: set[str | None] = set()
    services: set[str | None] = set()
    for container in program.containers:
        name = declared_service(container.inputs)
        labels = {label["label"] for label in container.inputs.get("labels", [])}
        (services if SERVICE_LABEL in labels else fixed).add(name)
    assert {"skriptoteket-web", "classhub_web"} <= services
    assert {"nginx-proxy", "shared-postgres", "huleedu_kafka"} <= fixed
    assert lines == sorted(
        [*(f"name {n}" for n in fixed), *(f"service {s}" for s in services),
         "image skriptoteket-runner:hemma"]
    )  # fmt: skip


def test_the_check_runs_every_hour_by_default_with_the_configured_docker() -> None:
    config = config_with(
        dockerPath="/usr/bin/docker", dockerService="docker.service", drift={"schedule": "daily"}
    )
    drift = unit_groups(config)[-1]
    service = next(f.content for f in drift.files if f.path.endswith(".service"))
    assert drift.schedule == "daily"
    assert (
        f"ExecStart={DRIFT_SCRIPT} --docker /usr/bin/docker --postgres shared-postgres " in service
    )
    assert "Requires=docker.service\nAfter=docker.service\n" in service
    assert f"--service-label {SERVICE_LABEL} --database skriptoteket " in service
    assert "--role skriptoteket --role huleedu_user\n" in service
    assert unit_groups(config_with())[-1].schedule == "hourly"
    modes = {f.path: f.mode for f in drift.files}
    assert modes[DRIFT_SCRIPT] == "0755" and modes[MANIFEST] == "0644"


def test_the_argv_refuses_a_name_the_script_would_refuse() -> None:
    with pytest.raises(ValueError, match="bad database name"):
        drift_argv("/usr/bin/docker", "pg", "/m", ["-d"], [])
    with pytest.raises(ValueError, match="bad role name"):
        drift_argv("/usr/bin/docker", "pg", "/m", [], ["a b"])
    with pytest.raises(ValueError, match="bad container name"):
        drift_argv("/usr/bin/docker", "--pg", "/m", [], [])


def test_the_install_is_secret_when_the_manifest_hashes_a_file_with_a_secret_value() -> None:
    """A sha256 of a unit that holds a secret lets anyone with the state test guesses."""
    groups = [UnitGroup("x", (HostFile("/etc/x", "TOKEN=s3cret-value"),), ())]
    assert manifest_holds_secret(groups, ["s3cret-value"])
    assert not manifest_holds_secret(groups, ["other", ""])
    gpu = {**MANAGED_GPU, "tabby": {**MANAGED_GPU["tabby"], "args": ["--token", "tok3n-value"]}}
    config = {**site_config(), "gpu": gpu}
    marked = run_program(config, OPERATOR_SECRETS | {"gpu"})
    plain = run_program(config)
    assert marked.named(f"{DRIFT_JOB}-install").secret_input("create")
    assert not plain.named(f"{DRIFT_JOB}-install").secret_input("create")


@pytest.mark.tools
def test_the_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    done = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.tools
def test_the_units_pass_systemd_analyze_verify(sandbox: Sandbox) -> None:
    shutil.copytree("/usr/lib/systemd", sandbox.path("/usr/lib/systemd"), symlinks=True)
    sandbox.path("/etc/systemd/system").mkdir(parents=True)
    sandbox.path("/etc/systemd/system/snap.docker.dockerd.service").write_text(
        "[Unit]\nDescription=stand-in for the host's Docker\n[Service]\nExecStart=/bin/true\n"
    )
    drift = unit_groups(config_with())[-1]
    sandbox.run(install_script(drift))
    assert exec_paths(drift) == {DRIFT_SCRIPT}, "the script is the group's own file"
    assert sandbox.path(DRIFT_SCRIPT).read_text() == SCRIPT.read_text()
    done = subprocess.run(
        ["systemd-analyze", f"--root={sandbox.root}", "verify", *drift.unit_names],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
