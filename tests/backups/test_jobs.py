"""The backups as the program declares them: what the nightly unit takes and how, the
drill's probes, and the repository's secrets arriving once, root-only."""

from __future__ import annotations

import copy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.backups.install import restic_version_check
from components.backups.jobs import checks_file
from components.backups.restic import (
    CACHE_DIR,
    ENV_FILE,
    LOCK_FILE,
    restic_env,
)
from components.config.reading import parse
from components.config.stack import StackConfig
from components.foundation.commands import as_command
from components.host.unit_files import UnitGroup, install_script
from components.main import backup_plan, host_units
from tests.backups.standins import FILES, RESTIC
from tests.harness import (
    BACKUP_REPOSITORY,
    OPERATOR_SECRETS,
    OPERATOR_VALUES,
    as_cli_value,
    run_expecting_error,
    run_program,
    site_config,
    with_classhub,
)
from tests.host.test_units import Sandbox, sandbox  # noqa: F401  (the fixture)


def parsed(config: dict[str, Any]) -> StackConfig:
    return parse({k: as_cli_value(v) for k, v in config.items()}, OPERATOR_SECRETS)


def group(config: StackConfig, name: str) -> UnitGroup:
    return next(g for g in host_units(config, config.apps()) if g.name == name)


def exec_start(unit: UnitGroup) -> list[str]:
    service = next(f.content for f in unit.files if f.path.endswith(".service"))
    line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def options(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


def test_the_nightly_backup_takes_every_database_and_every_data_volume() -> None:
    config = parsed(with_classhub(site_config()))
    argv = exec_start(group(config, "hemma-backup"))
    assert argv[0] == "/usr/local/lib/hemma/hemma-backup.sh"
    assert options(argv, "--docker") == ["/snap/bin/docker"]
    assert options(argv, "--postgres") == ["shared-postgres"]
    assert options(argv, "--env") == [ENV_FILE]
    databases = options(argv, "--database")
    assert databases == [db for app in config.apps() for db in app.databases]
    assert len(databases) == 15
    volumes = dict(spec.split(":", 1) for spec in options(argv, "--volume"))
    assert volumes["grafana-data"] == "stop:grafana", "Grafana's SQLite, stopped"
    assert volumes["huleedu_kafka_data"] == "stop:huleedu_kafka"
    assert volumes["classhub-minio"] == "stop:classhub_minio"
    for live in ("skriptoteket-artifacts", "classhub-uploads", "nginx-proxy-certs"):
        assert volumes[live] == "live", live
    assert volumes["acme-companion-acme"] == "live", "the ACME account is data"
    for cache in ("huleedu_hf_cache", "classhub-ollama", "prometheus-data", "nginx-proxy-html"):
        assert cache not in volumes, f"{cache} is not backed up"
    assert "shared-postgres-data" not in volumes, "the databases go as dumps"


def test_an_adopted_volume_is_backed_up_by_the_name_it_has() -> None:
    config = copy.deepcopy(site_config())
    config["volumeNames"] = {"grafana-data": "skriptoteket_grafana-data"}
    argv = exec_start(group(parsed(config), "hemma-backup"))
    assert "skriptoteket_grafana-data:stop:grafana" in options(argv, "--volume")


def test_the_drill_probes_every_database_it_restores() -> None:
    config = parsed(with_classhub(site_config()))
    drill = group(config, "hemma-restore-drill")
    argv = exec_start(drill)
    probes_file = options(argv, "--probes")[0]
    probes = next(f.content for f in drill.files if f.path == probes_file)
    probed = {line.split(":", 1)[0] for line in probes.splitlines()}
    assert probed == {db for app in config.apps() for db in app.databases}
    assert "classhub:SELECT count(*) FROM django_migrations" in probes.splitlines()
    assert options(argv, "--dumps") == [config.backups.dumps_directory]


def test_the_repository_check_runs_restic_check() -> None:
    config = parsed(site_config())
    argv = exec_start(group(config, "hemma-backup-check"))
    assert argv == [
        "/usr/local/lib/hemma/hemma-backup-check.sh",
        "--env",
        ENV_FILE,
        "--metrics",
        config.backups.metrics_directory,
        "--cache",
        CACHE_DIR,
        "--lock",
        LOCK_FILE,
    ]


def test_the_restic_jobs_share_one_cache_and_take_turns_on_one_lock() -> None:
    """One cache: the weekly check and drill start warm from the nightly's. One lock:
    a backup and a check that systemd starts together wait for each other."""
    config = parsed(site_config())
    for name in ("hemma-backup", "hemma-backup-check", "hemma-restore-drill"):
        argv = exec_start(group(config, name))
        assert options(argv, "--cache") == [CACHE_DIR], name
        assert options(argv, "--lock") == [LOCK_FILE], name
        assert options(argv, "--env") == [ENV_FILE], name


def test_every_restic_job_checks_restic_before_it_installs() -> None:
    config = parsed(site_config())
    for name in ("hemma-backup", "hemma-backup-check", "hemma-restore-drill"):
        script = install_script(group(config, name))
        assert script.index(restic_version_check()) < script.index("\nput "), name
    assert restic_version_check() not in install_script(group(config, "hemma-host-metrics"))


def test_the_repository_secrets_arrive_on_stdin_as_a_root_only_file(
    sandbox: Sandbox,  # noqa: F811
) -> None:
    config = parsed(site_config())
    backup = group(config, "hemma-backup")
    assert backup.secret_file == ENV_FILE
    secret = restic_env(BACKUP_REPOSITORY, OPERATOR_VALUES["resticPassword"], {})
    sandbox.run(install_script(backup), stdin=secret)
    installed = sandbox.path(ENV_FILE)
    assert installed.read_text() == secret
    assert oct(installed.stat().st_mode & 0o777) == "0o600"
    assert "RESTIC_PASSWORD" not in "".join(f.content for f in backup.files)


def test_backups_need_a_repository_and_its_password() -> None:
    config = copy.deepcopy(site_config())
    del config["backups"]["repository"]
    del config["resticPassword"]
    message, program = run_expecting_error(config, OPERATOR_SECRETS - {"resticPassword"})
    assert message.splitlines() == [
        "hemma:backups.repository: is required (a restic repository off this disk: "
        "/mnt/PATH, sftp:HOST:/PATH, s3:URL; or backups.enabled: false)",
        "hemma:resticPassword: is required by the backups "
        "(pulumi config set --secret resticPassword ...)",
    ]
    assert program.declared == []


def test_class_hubs_drill_migrates_and_checks_both_django_services() -> None:
    """Runbook 004's drill: restore into a temporary database, both Django services
    migrate and boot. The checks file lists them in order, one tab-separated line each."""
    config = parsed(with_classhub(site_config()))
    plan = backup_plan(config, config.apps())
    assert checks_file(plan.checks) == "".join(
        f"classhub\t{app}\tpython\tmanage.py\t{command}\n"
        for app in ("classhub_web", "helper_web")
        for command in ("migrate\t--noinput", "check")
    )


@pytest.mark.parametrize("word", ["two\twords", "line\nbreak", ""])
def test_a_check_the_file_cannot_carry_is_refused(word: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        checks_file([("classhub", "classhub_web", ("python", word))])


def test_the_repository_is_created_once_by_up_and_never_by_a_job() -> None:
    """A nightly `restic init` put a new, empty repository on the system disk when the
    backup disk did not mount. One step of `up` creates it instead, once, after the
    backup's files are installed, and nothing removes it."""
    program = run_program(site_config())
    step = program.named("hemma-backup-repository")
    install = program.named("hemma-backup-install")
    assert step.inputs["create"] == as_command(
        "sudo -n /usr/local/lib/hemma/hemma-repository.sh init --env /etc/hemma/restic.env"
        " --cache /var/cache/hemma-restic --lock /run/lock/hemma-restic.lock"
    )
    assert "update" not in step.inputs and "delete" not in step.inputs
    assert install.urn in step.dependencies
    assert step.parent == program.named("hemma-backup").urn
    assert step.inputs["triggers"] == [BACKUP_REPOSITORY, False]
    assert step.secret_input("triggers"), "the repository's name may hold credentials"

    config = copy.deepcopy(site_config())
    config["backups"] = {**config["backups"], "systemDisk": True}
    chosen = run_program(config).named("hemma-backup-repository")
    assert chosen.inputs["create"].endswith("--system-disk'")
    assert chosen.inputs["triggers"] == [BACKUP_REPOSITORY, True]

    for name in ("hemma-backup.sh", "hemma-backup-check.sh", "hemma-drill.sh"):
        assert "restic_run init" not in (FILES / name).read_text(), name
    assert "restic_run init" in (FILES / "hemma-repository.sh").read_text()


def test_without_backups_no_repository_is_created() -> None:
    config = copy.deepcopy(site_config())
    config["backups"] = {"enabled": False}
    del config["resticPassword"]
    program = run_program(config, OPERATOR_SECRETS - {"resticPassword"})
    assert not [r for r in program.declared if r.name == "hemma-backup-repository"]


@pytest.mark.parametrize(
    ("printed", "message"),
    [
        ("restic 0.14.0 compiled with go1.19.8 on linux/amd64", None),
        ("restic 0.12.1 compiled with go1.16.6 on linux/amd64", None),
        ("restic 0.19.1 compiled with go1.25.0 on linux/amd64", None),
        (
            "restic 0.12.0 compiled with go1.15.8 on linux/amd64",
            "hemma: restic 0.12.0 on this host is older than 0.12.1, which the backups need",
        ),
        (
            "restic 0.9.6 compiled with go1.13.4 on linux/amd64",
            "hemma: restic 0.9.6 on this host is older than 0.12.1",
        ),
        (None, "hemma: restic is not installed on this host: the backups need restic 0.12.1"),
    ],
)
def test_an_install_stops_on_a_restic_the_scripts_cannot_use(
    tmp_path: Path, printed: str | None, message: str | None
) -> None:
    """Ubuntu 22.04 ships restic 0.12.1; `restic version` is what the check reads."""
    fake = tmp_path / "restic"
    # None: as a shell finds no restic at all (/usr/bin has one here).
    body = f"echo '{printed}'" if printed else "echo 'restic: not found' >&2; exit 127"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", restic_version_check() + "echo installed"],
        capture_output=True,
        text=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        timeout=30,
    )
    if message is None:
        assert (done.returncode, done.stdout) == (0, "installed\n"), done.stderr
    else:
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith(message), done.stderr


def test_the_real_restic_here_passes_the_install_check() -> None:
    assert RESTIC, "restic is required (apt-get install restic)"
    done = subprocess.run(["bash", "-c", restic_version_check()], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
