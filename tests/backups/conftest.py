"""A Hemma in a temp dir: PostgreSQL with two app databases, app volumes, a restic
repository, the root-only env file and the stand-in docker (see standins.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.backups.restic import Keep, backup_argv, check_argv, drill_argv, restic_env
from tests.backups.standins import FILES, RESTIC, Docker, Postgres, running_postgres

# Every character the env file's quoting has to survive.
PASSWORD = "pa ss'wo\"rd $HOME `id` \\n \\\\ end"
DATABASES = ("skriptoteket", "huleedu_content")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    for pg in running_postgres():
        pg.sql("CREATE DATABASE skriptoteket")
        pg.sql(
            "CREATE TABLE tools (id int PRIMARY KEY, title text NOT NULL);"
            "INSERT INTO tools SELECT g, 'tool ' || g FROM generate_series(1, 500) g",
            db="skriptoteket",
        )
        pg.sql("CREATE DATABASE huleedu_content")
        pg.sql(
            "CREATE TABLE essays (id int, body text);"
            "INSERT INTO essays SELECT g, repeat('lorem ipsum ', 200)"
            " FROM generate_series(1, 300) g",
            db="huleedu_content",
        )
        yield pg


def init_repository(root: Path, repository: str, *more: str) -> subprocess.CompletedProcess[str]:
    """hemma-repository.sh init, the one step that creates a repository, as `up` runs it."""
    assert RESTIC, "restic is required (apt-get install restic)"
    env_file = root / "init.env"
    env_file.write_text(restic_env(repository, PASSWORD, {}))
    env_file.chmod(0o600)
    return subprocess.run(
        [
            "bash",
            str(FILES / "hemma-repository.sh"),
            "init",
            "--env",
            str(env_file),
            "--cache",
            str(root / "init-cache"),
            "--lock",
            str(root / "init.lock"),
            *more,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        timeout=60,
    )


@pytest.fixture(scope="session")
def initialised_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """restic init spends seconds calibrating its key derivation: once, then copied.
    The test machine has one filesystem, so the repository is on its "system disk",
    made there on purpose (--system-disk) as an operator without a backup disk would."""
    root = tmp_path_factory.mktemp("restic")
    done = init_repository(root, str(root / "repo"), "--system-disk")
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "repo"


@dataclass
class Hemma:
    root: Path
    pg: Postgres
    docker: Docker
    dumps: Path
    volume_root: Path
    metrics: Path
    scratch: Path
    env_file: Path
    repository: Path
    path_prefix: str = ""
    """Directories put first on the jobs' PATH (an ssh that knows the test sshd)."""

    @property
    def cache(self) -> Path:
        return self.root / "restic-cache"

    @property
    def lock(self) -> Path:
        return self.root / "lock" / "hemma-restic.lock"

    def env(self) -> dict[str, str]:
        path = "/usr/bin:/bin:/usr/sbin:/sbin"
        return {
            "PATH": f"{self.path_prefix}:{path}" if self.path_prefix else path,
            "HOME": str(self.root / "home"),
        }

    def write_env(self, repository: str, password: str = PASSWORD) -> None:
        self.env_file.write_text(restic_env(repository, password, {}))
        self.env_file.chmod(0o600)

    def volume(self, name: str) -> Path:
        data = self.volume_root / name / "_data"
        data.mkdir(parents=True, exist_ok=True)
        return data

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", *argv], capture_output=True, text=True, env=self.env(), timeout=120
        )

    def backup(
        self,
        databases: tuple[str, ...] = DATABASES,
        volumes: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        return self.run(self.backup_argv(databases, volumes))

    def backup_argv(
        self,
        databases: tuple[str, ...] = DATABASES,
        volumes: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    ) -> list[str]:
        """The unit's ExecStart in this world, as backup_argv renders it."""
        return backup_argv(
            str(self.docker.path),
            "shared-postgres",
            str(self.dumps),
            str(self.env_file),
            str(self.metrics),
            str(self.volume_root),
            Keep(daily=3, weekly=2, monthly=1),
            databases,
            volumes,
            script=str(FILES / "hemma-backup.sh"),
            stop_timeout=5,
            cache=str(self.cache),
            lock=str(self.lock),
        )

    def drill(
        self, probes: tuple[tuple[str, str], ...] = (), sample: int = 0
    ) -> subprocess.CompletedProcess[str]:
        argv = drill_argv(
            str(self.docker.path),
            "shared-postgres",
            str(self.env_file),
            str(self.metrics),
            str(self.scratch),
            str(self.dumps),
            probes,
            sample,
            script=str(FILES / "hemma-drill.sh"),
            cache=str(self.cache),
            lock=str(self.lock),
        )
        return self.run(argv)

    def check(self) -> subprocess.CompletedProcess[str]:
        argv = check_argv(
            str(self.env_file),
            str(self.metrics),
            script=str(FILES / "hemma-backup-check.sh"),
            cache=str(self.cache),
            lock=str(self.lock),
        )
        return self.run(argv)

    def restic(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert RESTIC, "restic is required (apt-get install restic)"
        env = {
            **self.env(),
            "RESTIC_REPOSITORY": str(self.repository),
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(self.root / "operator-cache"),
        }
        return subprocess.run([RESTIC, *args], capture_output=True, text=True, env=env, timeout=60)


def make_hemma(root: Path, postgres: Postgres, repository: Path) -> Hemma:
    """A world under ``root`` whose restic repository starts as a copy of ``repository``."""
    (root / "home").mkdir()
    volume_root = root / "volumes"
    volume_root.mkdir()
    world = Hemma(
        root=root,
        pg=postgres,
        docker=Docker(root / "bin", postgres, volume_root),
        dumps=root / "dumps",
        volume_root=volume_root,
        metrics=root / "metrics",
        scratch=root / "scratch",
        env_file=root / "etc" / "restic.env",
        repository=root / "repo",
    )
    shutil.copytree(repository, world.repository)
    world.env_file.parent.mkdir()
    world.write_env(str(world.repository))
    # The id init recorded beside its env file: the jobs take that repository only.
    shutil.copy(repository.parent / "restic-repository.id", world.env_file.parent)
    assert os.stat(world.env_file).st_mode & 0o777 == 0o600
    return world


@pytest.fixture
def hemma(tmp_path: Path, postgres: Postgres, initialised_repository: Path) -> Hemma:
    """A fresh world whose repository exists already (made with hemma-repository.sh
    init --system-disk: this machine has no other disk)."""
    return make_hemma(tmp_path, postgres, initialised_repository)
