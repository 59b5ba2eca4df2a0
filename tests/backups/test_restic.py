"""The env file, the scripts' argv and the scripts themselves (shellcheck, usage)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from components.backups import install, restic
from components.backups.restic import Keep, backup_argv, drill_argv, host_metrics_argv, restic_env
from tests.backups.standins import FILES, ROOT

RUNBOOK_KEEP = Keep(daily=7, weekly=4, monthly=12)

HOSTILE = {
    "AWS_SECRET_ACCESS_KEY": 'it\'s "quoted" and $HOME and ${PATH} and `id` and $(touch pwned)',
    "B2_ACCOUNT_KEY": "back\\slash \\\\ double \\' and \\n not a newline",
    "B2_ACCOUNT_ID": "/var/cache/restic with spaces/",
    "MULTI_LINE": "first line\nsecond line\n",
    "EMPTY": "",
    "DASHES": "-n -e --",
    "UNICODE": "lösenord ✓ '",
}


def read_back(env_file: Path, name: str, shell: str) -> str:
    script = f'set -a; . "$1"; set +a; printf %s "${name}"'
    done = subprocess.run(
        [shell, "-c", script, "sh", str(env_file)],
        capture_output=True,
        text=True,
        cwd=env_file.parent,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_restic_env_round_trips_hostile_values(tmp_path: Path, shell: str) -> None:
    password = "p@ss w0rd'\"$x`y`\\z\n"
    env_file = tmp_path / "restic.env"
    env_file.write_text(restic_env("s3:https://s3.example.com/bucket/hemma", password, HOSTILE))
    assert read_back(env_file, "RESTIC_PASSWORD", shell) == password
    assert (
        read_back(env_file, "RESTIC_REPOSITORY", shell) == "s3:https://s3.example.com/bucket/hemma"
    )
    for name, value in HOSTILE.items():
        assert read_back(env_file, name, shell) == value, name
    assert not (tmp_path / "pwned").exists(), "nothing in a value runs"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"1BAD": "x"}, "not an environment variable name"),
        ({"BAD-NAME": "x"}, "not an environment variable name"),
        ({"A=B": "x"}, "not an environment variable name"),
        ({"RESTIC_PASSWORD": "x"}, "cannot be set through extra"),
        ({"RESTIC_PASSWORD_FILE": "/x"}, "cannot be set through extra"),
        ({"PATH": "/tmp"}, "cannot be set through extra"),
        ({"BASH_ENV": "/tmp/x"}, "cannot be set through extra"),
        # The jobs share one cache (--cache); the check would otherwise start cold.
        ({"RESTIC_CACHE_DIR": "/tmp/x"}, "cannot be set through extra"),
        ({"AWS_SECRET_ACCESS_KEY": "a\0b"}, "NUL"),
    ],
)
def test_restic_env_refuses_bad_names_and_values(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        restic_env("/srv/restic", "secret", extra)


def test_restic_env_needs_a_repository_and_a_password() -> None:
    with pytest.raises(ValueError, match="password"):
        restic_env("/srv/restic", "", {})
    with pytest.raises(ValueError, match="repository"):
        restic_env("", "secret", {})


def test_backup_argv_is_the_scripts_command_line() -> None:
    argv = backup_argv(
        "/snap/bin/docker",
        "shared-postgres",
        restic.DUMPS_DIR,
        restic.ENV_FILE,
        restic.METRICS_DIR,
        restic.VOLUME_ROOT,
        Keep(daily=7, weekly=4, monthly=6),
        ["skriptoteket", "huleedu_content"],
        [
            ("classhub-media", "stop", ("classhub_web", "helper_web")),
            ("grafana-data", "live", ()),
        ],
    )
    assert argv == [
        restic.BACKUP_SCRIPT,
        "--docker", "/snap/bin/docker",
        "--postgres", "shared-postgres",
        "--dumps", "/var/backups/hemma/dumps",
        "--env", "/etc/hemma/restic.env",
        "--metrics", restic.METRICS_DIR,
        "--volume-root", "/var/snap/docker/common/var-lib-docker/volumes",
        "--cache", "/var/cache/hemma-restic",
        "--lock", "/run/lock/hemma-restic.lock",
        "--keep-daily", "7",
        "--keep-weekly", "4",
        "--keep-monthly", "6",
        "--host", "hemma",
        "--stop-timeout", "120",
        "--database", "skriptoteket",
        "--database", "huleedu_content",
        "--volume", "classhub-media:stop:classhub_web,helper_web",
        "--volume", "grafana-data:live",
    ]  # fmt: skip
    assert shlex.split(shlex.join(argv)) == argv


@pytest.mark.parametrize(
    ("volumes", "message"),
    [
        ([("v", "export:tar", ())], "live or stop"),
        ([("v", "stop", ())], "name the containers"),
        ([("v", "live", ("web",))], "stops no containers"),
        ([("v:x", "live", ())], "bad volume name"),
        ([("v", "stop", ("web,db",))], "bad container name"),
        ([("v", "live", ()), ("v", "live", ())], "listed twice"),
    ],
)
def test_backup_argv_refuses_what_the_script_would(
    volumes: list[tuple[str, str, tuple[str, ...]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        backup_argv("docker", "shared-postgres", "/d", "/e", "/m", "/v", RUNBOOK_KEEP, [], volumes)


def test_backup_argv_refuses_relative_paths_and_odd_database_names() -> None:
    with pytest.raises(ValueError, match="absolute"):
        backup_argv("docker", "shared-postgres", "dumps", "/e", "/m", "/v", RUNBOOK_KEEP, [], [])
    with pytest.raises(ValueError, match="bad database name"):
        backup_argv("docker", "shared-postgres", "/d", "/e", "/m", "/v", RUNBOOK_KEEP, ["a b"], [])


def test_drill_and_host_metrics_argv() -> None:
    argv = drill_argv(
        "/snap/bin/docker",
        "shared-postgres",
        restic.ENV_FILE,
        restic.METRICS_DIR,
        restic.DRILL_SCRATCH,
        restic.DUMPS_DIR,
        [("skriptoteket", "SELECT count(*) > 0 FROM tools"), ("huleedu_content", "SELECT 1")],
        sample=25,
    )
    assert argv[0] == restic.DRILL_SCRIPT
    assert argv[argv.index("--dumps") + 1] == restic.DUMPS_DIR
    assert argv[argv.index("--cache") + 1] == restic.CACHE_DIR
    assert argv[argv.index("--sample") + 1] == "25"
    assert argv[-4:] == [
        "--probe",
        "skriptoteket:SELECT count(*) > 0 FROM tools",
        "--probe",
        "huleedu_content:SELECT 1",
    ]
    assert shlex.split(shlex.join(argv)) == argv
    with pytest.raises(ValueError, match="no SQL"):
        drill_argv("d", "shared-postgres", "/e", "/m", "/s", "/d", [("skriptoteket", " ")], 20)
    assert host_metrics_argv("/snap/bin/docker", restic.METRICS_DIR) == [
        restic.HOST_METRICS_SCRIPT,
        "--docker",
        "/snap/bin/docker",
        "--metrics",
        restic.METRICS_DIR,
    ]


def test_the_host_scripts_are_the_files_and_pass_shellcheck() -> None:
    scripts = install.host_scripts()
    assert sorted(Path(p).name for p in scripts) == sorted(p.name for p in FILES.iterdir())
    for path, text in scripts.items():
        assert text == (FILES / Path(path).name).read_text()
        if path.endswith(".sh") and path != restic.RESTIC_LIB:
            assert text.startswith("#!/usr/bin/env bash\n"), path
            assert install.RESTIC_FILES.get(path, "0755") == "0755", path
    assert install.RESTIC_FILES[restic.RESTIC_LIB] == "0644", "sourced, never run"
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    files = [*FILES.glob("*.sh"), ROOT / "scripts" / "restore"]
    # -x: each script is checked with the library it sources (paths from the root).
    done = subprocess.run(
        [shellcheck, "-x", *map(str, files)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(
    "script",
    ["hemma-backup.sh", "hemma-drill.sh", "hemma-host-metrics.sh", "hemma-backup-check.sh"],
)
def test_the_scripts_refuse_unknown_or_missing_arguments(script: str) -> None:
    for args in (["--bogus", "x"], ["--docker"], []):
        done = subprocess.run(
            ["bash", str(FILES / script), *args], capture_output=True, text=True, timeout=10
        )
        assert done.returncode == 2, (args, done.stderr)


def test_a_keep_of_zero_keeps_none_of_that_kind_and_a_negative_one_is_refused() -> None:
    volumes: list[tuple[str, str, tuple[str, ...]]] = []
    argv = backup_argv(
        "docker", "shared-postgres", "/d", "/e", "/m", "/v", Keep(7, 4, 0), [], volumes
    )
    assert "--keep-monthly 0" in " ".join(argv)
    with pytest.raises(ValueError, match=r"keep\.monthly cannot be negative: -1"):
        backup_argv(
            "docker", "shared-postgres", "/d", "/e", "/m", "/v", Keep(7, 4, -1), [], volumes
        )
