"""The nightly backup as Hemma runs it: the hemma-backup unit's ExecStart, exactly as
the program renders it, run as root against a real shared-postgres container
through the real docker CLI, with that CLI confined the way the Docker snap is.

On Hemma the docker CLI is a strictly confined snap: it cannot open files outside
the invoking user's home (docker-snap's README; `--env-file /etc/hemma/...` was
the defect). Here every docker call of the backup goes through a wrapper that runs
the real CLI in its own mount namespace, with the backup's own directories
(``/etc/hemma``, ``/usr/local/lib/hemma``, ``/var/backups``, the repository and
metrics) hidden under empty read-only tmpfs mounts. Whatever the CLI would have to
read from them, it cannot; what the script itself reads and writes (the shell,
running as root) it can.

The unit's files (the script, the root-only env file from the command's stdin) are
written where the unit names them, inside another mount namespace, so nothing of
this lands on the test machine.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.model.rollout import SERVICE_LABEL
from tests.harness import OPERATOR_VALUES, Program, run_program, site_config, with_classhub
from tests.parts.engine import Engine
from tests.parts.side import engine, pg_image

pytestmark = pytest.mark.tools

__all__ = ["engine", "pg_image"]

PUT = re.compile(r"^put (\S+) (\d{4}) ?(\S*)(?:\s+#.*)?$", re.M)
HIDDEN_SYSTEM_DIRS = ("/etc/hemma", "/usr/local/lib/hemma", "/var/backups")
TEST_DIR = "/var/backups/hemma-test"
"""The repository and the metrics, inside the namespace: data directories the config
allows, kept on the test's own directory (``/var/backups`` is bound there)."""
VOLUME_ROOT = "/var/lib/docker/volumes"
"""The deb's volume root, where the private engine's volumes are bound in the namespace."""
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROWS = 500


@dataclass
class Night:
    program: Program
    root: Path
    container: str
    engine: Engine
    units: dict[str, list[str]]
    """Unit group -> its service's ExecStart."""
    files: dict[str, tuple[int, bytes]]

    @property
    def argv(self) -> list[str]:
        return self.units["hemma-backup"]

    @property
    def repository(self) -> Path:
        return self.root / "var-backups" / "hemma-test" / "repo"

    @property
    def metrics(self) -> Path:
        return self.root / "var-backups" / "hemma-test" / "metrics"

    @property
    def dumps(self) -> Path:
        # /var/backups/hemma/dumps inside the namespace, kept on this directory.
        return self.root / "var-backups" / "hemma" / "dumps"

    def run(self, unit: str = "hemma-backup") -> subprocess.CompletedProcess[str]:
        """ExecStart in a fresh mount namespace, environment as systemd gives a root
        service without User= (no HOME), the unit's files where it names them."""
        return self.run_argv(self.units[unit])

    def run_argv(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        (self.root / "var-backups").mkdir(exist_ok=True)
        # /etc/hemma lasts from run to run, as on Hemma: the repository's recorded id.
        (self.root / "etc-hemma").mkdir(mode=0o755, exist_ok=True)
        setup = ["set -eu"]
        setup.append(f"mount --bind {shlex.quote(str(self.root / 'etc-hemma'))} /etc/hemma")
        setup.append("mount -t tmpfs -o mode=0755 hemma /usr/local/lib/hemma")
        setup.append(f"mount --bind {shlex.quote(str(self.root / 'var-backups'))} /var/backups")
        volumes = self.engine.root / "data" / "volumes"
        setup.append(f"mount --bind {shlex.quote(str(volumes))} {VOLUME_ROOT}")
        setup.append("mount -t tmpfs -o mode=0755 cache /var/cache")
        setup.append("mount -t tmpfs -o mode=1777 tmp /var/tmp")
        setup.append("mount -t tmpfs -o mode=1777 lock /run/lock")
        for path, (mode, data) in self.files.items():
            encoded = base64.b64encode(data).decode()
            setup.append(
                f"printf %s {encoded} | base64 -d > {shlex.quote(path)}; "
                f"chmod {mode:o} {shlex.quote(path)}"
            )
        setup.append("exec env -i PATH=" + SYSTEMD_PATH + " " + shlex.join(argv))
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(setup)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    def psql(self, sql: str, db: str = "postgres") -> str:
        done = self.engine.docker(
            "exec", "-i", self.container, "psql", "-v", "ON_ERROR_STOP=1", "-qAt",
            "-U", "postgres", "-d", db, input=sql,
        )  # fmt: skip
        return done.stdout.strip()


def exec_start(unit: str) -> list[str]:
    """The unit's one ExecStart, split as systemd splits it (no specifiers left: the
    renderer doubles every %, and none is needed here)."""
    (line,) = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    assert "%" not in line.replace("%%", ""), line
    return shlex.split(line.replace("%%", "%"))


def confined_docker(path: Path, engine: Engine, hidden: list[str]) -> None:
    """The real docker CLI, unable to read the backup's directories, as the snap is."""
    env = engine.env()
    mounts = "; ".join(f"mount -t tmpfs -o ro,mode=0755 snap {shlex.quote(d)}" for d in hidden)
    inner = f'{mounts}; exec {shlex.quote(engine.client)} "$@"'
    path.write_text(
        "#!/bin/sh\n"
        f"export DOCKER_HOST={shlex.quote(env['DOCKER_HOST'])} "
        f"DOCKER_CONFIG={shlex.quote(env['DOCKER_CONFIG'])}\n"
        f'exec unshare --mount --propagation private sh -c {shlex.quote(inner)} docker "$@"\n'
    )
    path.chmod(0o755)


@pytest.fixture
def night(engine: Engine, pg_image: str, tmp_path: Path) -> Iterator[Night]:
    made = [
        d for d in (*HIDDEN_SYSTEM_DIRS[:2], "/var/lib/docker", VOLUME_ROOT) if not os.path.isdir(d)
    ]
    for directory in made:
        os.makedirs(directory)  # empty mount points only; removed below
    tag = secrets.token_hex(3)
    container = f"hm-shared-postgres-{tag}"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    confined_docker(docker, engine, [*HIDDEN_SYSTEM_DIRS, str(tmp_path)])
    config: dict[str, Any] = {
        **with_classhub(site_config()),
        "dockerPath": str(docker),
        "postgres": {**site_config()["postgres"], "containerName": container},
    }
    config["backups"] = {
        **config["backups"],
        "repository": f"{TEST_DIR}/repo",
        # This machine has one filesystem: the repository is on its system disk, on purpose.
        "systemDisk": True,
        "metricsDirectory": f"{TEST_DIR}/metrics",
        "volumeRoot": VOLUME_ROOT,
    }
    program = run_program(config)
    files, units = {}, {}
    for group in ("hemma-backup", "hemma-restore-drill"):
        install = program.named(f"{group}-install")
        for path, mode, content in PUT.findall(install.inputs["create"]):
            data = base64.b64decode(content) if content else install.inputs["stdin"].encode()
            if path.startswith(("/etc/hemma/", "/usr/local/lib/hemma/")):
                files[path] = (int(mode, 8), data)
            if path == f"/etc/systemd/system/{group}.service":
                units[group] = exec_start(data.decode())
    volumes = list(program.outputs["backups"]["volumes"])
    engine.docker(
        "run", "--detach", "--name", container, "--env", "POSTGRES_PASSWORD=pg-admin",
        pg_image,
    )  # fmt: skip
    for volume in volumes:
        engine.docker("volume", "create", volume)
    night = Night(program, tmp_path, container, engine, units, files)
    engine.wait_for(container, "{{.State.Running}}", "true", timeout=30)
    for _ in range(60):
        # Over TCP: the entrypoint's init server listens on the socket only.
        ready = engine.docker(
            "exec", container, "pg_isready", "-h", "127.0.0.1", "-U", "postgres", check=False
        )
        if ready.returncode == 0:
            break
        subprocess.run(["sleep", "0.5"], check=True)
    # The one step of `up` that creates the repository, as the program declares it.
    init = program.named("hemma-backup-repository").inputs["create"]
    created = night.run_argv(["bash", "-c", init])
    assert created.returncode == 0, created.stdout + created.stderr
    assert "created the repository" in created.stdout
    databases = program.outputs["backups"]["databases"]
    night.psql("".join(f'CREATE DATABASE "{db}";\n' for db in databases))
    night.psql(
        "CREATE TABLE tools (id int PRIMARY KEY, title text NOT NULL);"
        f"INSERT INTO tools SELECT g, 'tool ' || g FROM generate_series(1, {ROWS}) g;",
        db="skriptoteket",
    )
    try:
        yield night
    finally:
        engine.docker("rm", "--force", container, check=False)
        for volume in volumes:
            engine.docker("volume", "rm", "--force", volume, check=False)
        for directory in reversed(made):
            os.rmdir(directory)


def restic(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("restic")
    assert binary, "restic is required (apt-get install restic)"
    env = {
        "PATH": SYSTEMD_PATH,
        "RESTIC_REPOSITORY": str(repository),
        "RESTIC_PASSWORD": OPERATOR_VALUES["resticPassword"],
        "RESTIC_CACHE_DIR": str(repository.parent / "cache"),
    }
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_unit_dumps_every_database_keeps_a_failing_ones_old_dump_and_refuses_a_gone_disk(
    night: Night,
) -> None:
    # The stand-in for the snap bites: the old `docker exec --env-file /etc/hemma/...`
    # fails under it, for want of the file.
    docker = night.argv[night.argv.index("--docker") + 1]
    confined = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs hemma /etc/hemma && echo A=1 > /etc/hemma/x.env && exec \"$@\"", "sh",
         docker, "exec", "--env-file", "/etc/hemma/x.env", night.container, "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert confined.returncode != 0
    assert "/etc/hemma/x.env" in confined.stderr

    assert night.argv[0] == "/usr/local/lib/hemma/hemma-backup.sh"
    done = night.run()
    assert done.returncode == 0, done.stdout + done.stderr
    databases = night.program.outputs["backups"]["databases"]
    assert sorted(p.name for p in night.dumps.iterdir()) == sorted(f"{d}.dump" for d in databases)
    for path in night.dumps.iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"

    night.psql('CREATE DATABASE "restore_check";')
    restored = subprocess.run(
        [night.engine.client, "exec", "-i", night.container, "pg_restore", "-U", "postgres",
         "--no-owner", "-d", "restore_check"],
        stdin=(night.dumps / "skriptoteket.dump").open("rb"), capture_output=True,
        env=night.engine.env(), timeout=120,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert night.psql("SELECT count(*) FROM tools", db="restore_check") == str(ROWS)
    snapshot = restic(night.repository, "ls", "latest", "--path", "/var/backups/hemma/dumps")
    assert "/var/backups/hemma/dumps/skriptoteket.dump" in snapshot.stdout, snapshot.stderr

    # The next night, one database cannot be dumped: its old dump stays, the rest is
    # redone, and the run fails.
    kept = (night.dumps / "huleedu_nlp.dump").read_bytes()
    fresh = (night.dumps / "skriptoteket.dump").stat().st_mtime_ns
    night.psql('ALTER DATABASE "huleedu_nlp" RENAME TO "huleedu_nlp_gone";')
    failed = night.run()
    assert failed.returncode != 0
    assert "pg_dump of huleedu_nlp failed" in failed.stderr
    assert (night.dumps / "huleedu_nlp.dump").read_bytes() == kept
    assert (night.dumps / "skriptoteket.dump").stat().st_mtime_ns > fresh
    metrics = (night.metrics / "hemma_backup.prom").read_text()
    assert "hemma_backup_last_run_success 0" in metrics
    assert "hemma_backup_dump_failures 1" in metrics

    # The disk the repository is on goes away: the night fails and says why, the dumps
    # are refreshed, and no new repository appears in the old place; the drill fails.
    repository = night.repository
    shutil.rmtree(repository)
    gone = night.run()
    assert gone.returncode == 1
    assert "does not exist: is the backup disk mounted?" in gone.stderr, gone.stderr
    assert not repository.exists(), "no job creates a repository"
    assert (night.dumps / "skriptoteket.dump").stat().st_mtime_ns > fresh
    metrics = (night.metrics / "hemma_backup.prom").read_text()
    assert "hemma_backup_repository_ok 0" in metrics
    assert night.run("hemma-restore-drill").returncode == 1
    assert not repository.exists()


# --- the restore drill's checks: the runbook's "both Django services migrate and boot" --

MANAGE_PY = r"""#!/bin/sh
# Django's manage.py as far as the drill asks of it (the Class Hub images are not on
# this machine): migrate alters the database DATABASE_URL names, as the role it
# names, like a migration does; check reads what migrate wrote.
[ "$1" = manage.py ] || exit 2
case "$2" in
  migrate) exec psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q \
    -c "ALTER TABLE django_migrations ADD COLUMN IF NOT EXISTS drilled int" \
    -c "INSERT INTO django_migrations (app, name) VALUES ('drill', '$(hostname)')" ;;
  check) n=$(psql "$DATABASE_URL" -At \
      -c "SELECT count(*) FROM django_migrations WHERE app = 'drill'") && [ "$n" -gt 0 ] ;;
  *) exit 2 ;;
esac
"""
APPS = ("classhub_web", "helper_web")


@pytest.fixture
def classhub(night: Night, pg_image: str) -> Iterator[Night]:
    """Class Hub's database as the app left it (its role owns it and its tables), and
    its two containers running with their declared DATABASE_URL."""
    password = night.program.named("shared-postgres-classhub-password").state["result"]
    night.psql(
        f"CREATE ROLE classhub LOGIN PASSWORD '{password}';"
        'ALTER DATABASE "classhub" OWNER TO classhub;'
    )
    night.psql(
        "SET ROLE classhub;"
        "CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text);"
        "INSERT INTO django_migrations (app, name) VALUES ('classhub', '0001_initial');",
        db="classhub",
    )
    # The other apps' probes read Alembic's table, which their migrations made.
    for database in night.program.outputs["backups"]["databases"]:
        if database != "classhub":
            night.psql(
                "CREATE TABLE alembic_version (version_num text PRIMARY KEY);"
                "INSERT INTO alembic_version VALUES ('0001');",
                db=database,
            )
    network = f"hm-drill-{secrets.token_hex(3)}"
    night.engine.docker("network", "create", network)
    night.engine.docker("network", "connect", network, night.container)
    names = []
    for app in APPS:
        container = night.program.container(app)
        declared = dict(e.split("=", 1) for e in container.inputs["envs"])
        # Both deploy start-first: named SERVICE-DIGEST and labelled with the service.
        # An older copy of each still runs beside it, without the app: the drill must
        # pick the newest, as during a deploy.
        label = f"{SERVICE_LABEL}={app}"
        assert {"label": SERVICE_LABEL, "value": app} in container.inputs["labels"]
        for name in (f"{app}-000000000000", container.inputs["name"]):
            night.engine.docker(
                "run", "--detach", "--name", name, "--label", label, "--network", network,
                "--env", f"DATABASE_URL={declared['DATABASE_URL']}",
                "--entrypoint", "sleep", pg_image, "infinity",
            )  # fmt: skip
            names.append(name)
        night.engine.docker(
            "exec", "-i", container.inputs["name"], "sh", "-c",
            "cat > /usr/local/bin/python && chmod 0755 /usr/local/bin/python", input=MANAGE_PY,
        )  # fmt: skip
    try:
        yield night
    finally:
        night.engine.docker("rm", "--force", *names, check=False)
        night.engine.docker("network", "disconnect", "--force", network, night.container,
                            check=False)  # fmt: skip
        night.engine.docker("network", "rm", network, check=False)


def test_the_drill_migrates_and_checks_both_django_services_on_the_restored_copy(
    classhub: Night,
) -> None:
    assert classhub.run().returncode == 0
    drill = classhub.run("hemma-restore-drill")
    assert drill.returncode == 0, drill.stdout + drill.stderr
    for number, app in ((1, "classhub_web"), (2, "classhub_web"), (3, "helper_web"),
                        (4, "helper_web")):  # fmt: skip
        assert f"check {number} on classhub passed in {app}" in drill.stdout
    # The copy was migrated, not the live database, and the copy is gone.
    assert classhub.psql("SELECT count(*) FROM django_migrations", db="classhub") == "1"
    columns = classhub.psql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'django_migrations'",
        db="classhub",
    )
    assert "drilled" not in columns.split()
    assert classhub.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'drill_%'") == "0"

    # A service that cannot migrate the copy fails the drill.
    helper = classhub.program.container("helper_web").inputs["name"]
    classhub.engine.docker("exec", helper, "rm", "/usr/local/bin/python")
    failed = classhub.run("hemma-restore-drill")
    assert failed.returncode != 0
    assert "check 3 on classhub failed in helper_web" in failed.stderr
    metrics = (classhub.metrics / "hemma_drill.prom").read_text()
    assert "hemma_drill_last_run_success 0" in metrics
    assert 'hemma_drill_failures{check="database",database="classhub"} 1' in metrics
