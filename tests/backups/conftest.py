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

from components.backups.restic import Keep, backup_argv, drill_argv, restic_env
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


@pytest.fixture(scope="session")
def initialised_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """restic init spends seconds calibrating its key derivation: once, then copied."""
    assert RESTIC, "restic is required (apt-get install restic)"
    repository = tmp_path_factory.mktemp("restic") / "repo"
    env = {
        "PATH": "/usr/bin:/bin",
        "RESTIC_REPOSITORY": str(repository),
        "RESTIC_PASSWORD": PASSWORD,
    }
    done = subprocess.run([RESTIC, "init"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return repository


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

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(self.root / "home")}

    def write_env(self, repository: str, password: str = PASSWORD) -> None:
        cache = {"RESTIC_CACHE_DIR": str(self.root / "restic-cache")}
        self.env_file.write_text(restic_env(repository, password, cache))
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
        argv = backup_argv(
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
        )
        return self.run(argv)

    def drill(
        self, probes: tuple[tuple[str, str], ...] = (), sample: int = 0
    ) -> subprocess.CompletedProcess[str]:
        argv = drill_argv(
            str(self.docker.path),
            "shared-postgres",
            str(self.env_file),
            str(self.metrics),
            str(self.scratch),
            probes,
            sample,
            script=str(FILES / "hemma-drill.sh"),
        )
        return self.run(argv)

    def restic(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert RESTIC, "restic is required (apt-get install restic)"
        env = {
            **self.env(),
            "RESTIC_REPOSITORY": str(self.repository),
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(self.root / "restic-cache"),
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
    assert os.stat(world.env_file).st_mode & 0o777 == 0o600
    return world


@pytest.fixture
def hemma(tmp_path: Path, postgres: Postgres, initialised_repository: Path) -> Hemma:
    """A fresh world whose repository exists already (remove it to see the first night)."""
    return make_hemma(tmp_path, postgres, initialised_repository)
