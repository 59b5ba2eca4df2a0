"""The drift check on real parts: the unit groups installed by their own install
scripts into a private root, a real shared-postgres container on the private engine
holding the declared privilege model, containers on that engine, and the script's
installed copy run with the unit's own ExecStart (only the paths moved under the
root), through the real docker CLI confined the way the Docker snap is (it cannot
read the root: the SQL reaches psql on stdin).

Containers that other tests of the session left on the engine before this module
started are not this module's to judge: each assertion about strangers counts them out.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.host.drift import (
    CONTAINERS,
    DRIFT_JOB,
    DRIFT_SCRIPT,
    GRANTS,
    MANIFEST,
    manifest_line,
)
from components.host.unit_files import install_script
from components.model.rollout import SERVICE_LABEL
from tests.backups.test_on_engine import confined_docker, exec_start
from tests.harness import run_program, site_config
from tests.host.test_units import Sandbox, config_with, unit_groups
from tests.parts.engine import Engine
from tests.parts.side import busybox_image, engine, pg_image
from tests.postgres_server import database_sql, grant_sql, role_sql

pytestmark = pytest.mark.tools

pytest_plugins = ["tests.parts.fixtures"]
__all__ = ["busybox_image", "engine", "pg_image"]


PG = "hemma-drift-pg"
RUNNER_IMAGE = "skriptoteket-runner:hemma"
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_textfile(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Every sample of a Prometheus text file, strictly: a line that is not a comment
    and not exactly NAME{LABEL="VALUE",...} VALUE fails, and each label value is
    unescaped (only \\\\, \\" and \\n are escapes)."""
    assert text.endswith("\n")
    samples = []
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        labels: dict[str, str] = {}
        rest = match[2] or ""
        while rest:
            label = LABEL.match(rest)
            assert label, f"bad labels in {line!r}"
            value = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], label[2])
            labels[label[1]] = value
            rest = rest[label.end() :]
        samples.append((match[1], labels, match[3]))
    return samples


@dataclass
class Run:
    done: subprocess.CompletedProcess[str]
    text: str
    samples: list[tuple[str, dict[str, str], str]]

    def value(self, name: str, **labels: str) -> str:
        (value,) = [
            v for n, ls, v in self.samples if n == name and ls == {"source": "host", **labels}
        ]
        return value

    def items(self, kind: str) -> set[str]:
        return {
            ls["name"]
            for n, ls, _ in self.samples
            if n == "hemma_drift_item" and ls["kind"] == kind
        }


@dataclass
class World:
    engine: Engine
    root: Path
    """The private host: every unit group installed here by its install script."""
    work: Path
    argv: list[str]
    """The unit's ExecStart, its paths moved under the root."""
    foreign: set[str]
    """Containers other tests left on the engine."""
    image: str
    declared: tuple[str, ...] = ()
    """The declared containers running on the engine."""

    @property
    def metrics(self) -> Path:
        return self.work / "metrics"

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def run(self, argv: list[str] | None = None) -> Run:
        done = subprocess.run(
            ["bash", *(argv or self.argv)],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HEMMA_ROOT": str(self.root)},
            timeout=300,
        )
        path = self.metrics / "hemma_drift_host.prom"
        assert path.stat().st_mode & 0o777 == 0o644
        assert not list(self.metrics.glob(".hemma_drift_host.prom.*")), "the temp file is gone"
        text = path.read_text()
        return Run(done, text, parse_textfile(text))

    def psql(self, sql: str, db: str = "postgres") -> str:
        done = self.engine.docker(
            "exec", "-i", PG, "psql", "-v", "ON_ERROR_STOP=1", "-qAt", "-U", "postgres",
            "-d", db, input=sql,
        )  # fmt: skip
        return done.stdout.strip()

    def strangers(self, run: Run) -> set[str]:
        return run.items("container") - self.foreign


def moved(argv: list[str], root: Path, metrics: Path) -> list[str]:
    """The ExecStart with the script, its files and the metrics under the test's dirs."""
    paths = {"--manifest": MANIFEST, "--grants": GRANTS, "--containers": CONTAINERS}
    result = [str(root / DRIFT_SCRIPT.lstrip("/"))]
    for flag, value in zip(argv[1::2], argv[2::2], strict=True):
        if flag in paths:
            assert value == paths[flag]
            value = str(root / value.lstrip("/"))
        elif flag == "--metrics":
            value = str(metrics)
        result += [flag, value]
    return result


@pytest.fixture(scope="module")
def world(
    engine: Engine, pg_image: str, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    work = tmp_path_factory.mktemp("drift")
    root = work / "root"
    bin_dir = work / "bin"
    bin_dir.mkdir()
    for stub, text in (
        ("sudo", '#!/bin/sh\n[ "$1" = -n ] || exit 1\nshift\nexec "$@"\n'),
        ("systemctl", "#!/bin/sh\nexit 0\n"),
    ):
        (bin_dir / stub).write_text(text)
        (bin_dir / stub).chmod(0o755)
    docker = work / "docker-bin" / "docker"
    docker.parent.mkdir()
    confined_docker(docker, engine, [str(root)])
    foreign = set(engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    config = config_with(dockerPath=str(docker), postgres={"containerName": PG})
    groups = unit_groups(config)
    sandbox = Sandbox(root=root, bin=bin_dir)
    root.mkdir()
    for group in groups:
        sandbox.run(install_script(group), stdin="SECRET=x\n" if group.secret_file else "")
    service = root / "etc/systemd/system" / f"{DRIFT_JOB}.service"
    argv = moved(exec_start(service.read_text()), root, work / "metrics")
    assert argv[1:5] == ["--docker", str(docker), "--postgres", PG]

    engine.docker("run", "--detach", "--name", PG, "--env", "POSTGRES_PASSWORD=pg-admin", pg_image)
    engine.docker("tag", busybox_image, RUNNER_IMAGE)
    started = [PG]
    world = World(engine, root, work, argv, foreign, busybox_image)
    try:
        engine.wait_for(PG, "{{.State.Running}}", "true", timeout=30)
        for _ in range(120):
            # Over TCP: the entrypoint's init server listens on the socket only.
            ready = engine.docker(
                "exec", PG, "pg_isready", "-h", "127.0.0.1", "-U", "postgres", check=False
            )
            if ready.returncode == 0:
                break
            subprocess.run(["sleep", "0.5"], check=True)
        # The declared model, as pulumi-postgresql applies it (tests/postgres_server.py).
        program = run_program(site_config())
        for role in program.of_type("postgresql:index/role:Role"):
            world.psql(role_sql(role))
        for database in program.of_type("postgresql:index/database:Database"):
            world.psql(database_sql(database))
        for grant in program.of_type("postgresql:index/grant:Grant"):
            world.psql(grant_sql(grant))
        world.psql("CREATE TABLE notes (id int PRIMARY KEY, body text)", db="skriptoteket")
        world.psql("ALTER TABLE notes OWNER TO skriptoteket", db="skriptoteket")
        # The declared containers: a fixed name, a start-first copy, a runner.
        sleep = ["sleep", "3600"]
        engine.docker("run", "-d", "--name", "nginx-proxy", busybox_image, *sleep)
        started.append("nginx-proxy")
        copy = f"skriptoteket-web-{secrets.token_hex(6)}"
        engine.docker(
            "run", "-d", "--name", copy, "--label", f"{SERVICE_LABEL}=skriptoteket-web",
            busybox_image, *sleep,
        )  # fmt: skip
        started.append(copy)
        engine.docker("run", "-d", "--name", "runner-4f2a", RUNNER_IMAGE, *sleep)
        started.append("runner-4f2a")
        world.declared = tuple(started)
        yield world
    finally:
        engine.docker("rm", "--force", *started, check=False)
        engine.docker("rmi", RUNNER_IMAGE, check=False)


def hand_made(world: World, name: str, *args: str) -> None:
    world.engine.docker("run", "-d", "--name", name, *args, world.image, "sleep", "3600")


def test_the_clean_host_reports_nothing(world: World) -> None:
    run = world.run()
    assert run.done.returncode == 0, run.done.stderr
    assert run.value("hemma_drift_check_success") == "1"
    assert run.value("hemma_drift_items", kind="file") == "0"
    assert run.value("hemma_drift_items", kind="grant") == "0", run.done.stdout
    assert int(run.value("hemma_drift_items", kind="container")) == len(world.foreign)
    assert world.strangers(run) == set()
    assert run.items("file") == run.items("grant") == set()
    now = run.value("hemma_drift_check_last_run_timestamp_seconds")
    assert run.value("hemma_drift_last_success_timestamp_seconds") == now
    assert "done: " in run.done.stdout


def test_an_edited_unit_file_and_a_missing_one_are_reported(world: World) -> None:
    timer = world.path("/etc/systemd/system/hemma-backup.timer")
    script = world.path("/usr/local/lib/hemma/hemma-host-metrics.sh")
    kept_timer, kept_script = timer.read_text(), script.read_bytes()
    timer.write_text(kept_timer.replace("03:15:00", "04:15:00"))
    script.unlink()
    try:
        run = world.run()
    finally:
        timer.write_text(kept_timer)
        script.write_bytes(kept_script)
        script.chmod(0o755)
    assert run.done.returncode == 0, run.done.stderr
    assert run.value("hemma_drift_check_success") == "1"
    assert run.items("file") == {
        "/etc/systemd/system/hemma-backup.timer",
        "/usr/local/lib/hemma/hemma-host-metrics.sh",
    }
    assert run.value("hemma_drift_items", kind="file") == "2"
    assert "file changed: /etc/systemd/system/hemma-backup.timer" in run.done.stdout
    assert "file missing: /usr/local/lib/hemma/hemma-host-metrics.sh" in run.done.stdout
    assert world.run().items("file") == set(), "restored, nothing is left"


def test_a_drop_in_from_systemctl_edit_is_reported(world: World) -> None:
    """`systemctl edit hemma-backup.service` leaves the unit file as it was and writes
    an override beside it; `--runtime` writes it under /run."""
    written = [
        world.path("/etc/systemd/system/hemma-backup.service.d/override.conf"),
        world.path("/run/systemd/system/hemma-backup.timer.d/override.conf"),
    ]
    for conf in written:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("[Service]\nEnvironment=RESTIC_COMPRESSION=off\n")
    try:
        run = world.run()
    finally:
        for conf in written:
            conf.unlink()
            conf.parent.rmdir()
    assert run.done.returncode == 0, run.done.stderr
    assert run.items("file") == {
        "/etc/systemd/system/hemma-backup.service.d/override.conf",
        "/run/systemd/system/hemma-backup.timer.d/override.conf",
    }
    assert (
        "drop-in not declared: /etc/systemd/system/hemma-backup.service.d/override.conf"
        in run.done.stdout
    )
    assert world.run().items("file") == set(), "removed, nothing is left"


def test_a_grant_made_by_hand_is_reported(world: World) -> None:
    world.psql(
        "CREATE ROLE drift_reader LOGIN; GRANT CONNECT ON DATABASE huleedu_content TO drift_reader"
    )
    world.psql("GRANT SELECT ON notes TO drift_reader", db="skriptoteket")
    try:
        run = world.run()
    finally:
        world.psql("REVOKE SELECT ON notes FROM drift_reader", db="skriptoteket")
        world.psql("REVOKE CONNECT ON DATABASE huleedu_content FROM drift_reader")
        world.psql("DROP ROLE drift_reader")
    assert run.done.returncode == 0, run.done.stderr
    assert run.items("grant") == {
        "huleedu_content|database|drift_reader|CONNECT",
        "skriptoteket|table public.notes|drift_reader|SELECT",
    }
    assert run.value("hemma_drift_items", kind="grant") == "2"
    assert world.run().items("grant") == set(), "revoked, nothing is left"


def test_a_changed_owner_or_role_and_a_revoked_privilege_are_reported(world: World) -> None:
    world.psql(
        "ALTER ROLE skriptoteket CREATEDB; REVOKE TEMPORARY ON DATABASE skriptoteket FROM "
        "skriptoteket; GRANT pg_read_all_data TO huleedu_user"
    )
    try:
        run = world.run()
    finally:
        world.psql(
            "ALTER ROLE skriptoteket NOCREATEDB; GRANT TEMPORARY ON DATABASE skriptoteket TO "
            "skriptoteket; REVOKE pg_read_all_data FROM huleedu_user"
        )
    flags = "LOGIN,NOSUPERUSER,{},NOCREATEROLE,NOREPLICATION,NOBYPASSRLS"
    assert run.items("grant") == {
        f"role|skriptoteket|{flags.format('CREATEDB')}",
        f"role|skriptoteket|{flags.format('NOCREATEDB')}",
        "skriptoteket|database|skriptoteket|TEMPORARY",
        "member|pg_read_all_data|huleedu_user",
    }
    assert "declared grant missing: skriptoteket|database|skriptoteket|TEMPORARY" in (
        run.done.stdout
    )


def test_a_container_started_by_hand_is_reported_and_the_declared_ones_are_not(
    world: World,
) -> None:
    copy = f"skriptoteket-web-{secrets.token_hex(6)}"
    made = ["hand-made", copy, "huleedu_content_service-0123456789ab", "nginx-proxy-old"]
    hand_made(world, "hand-made")
    hand_made(world, copy)  # a start-first name, but not labelled so
    hand_made(  # labelled, but not a service that deploys start-first
        world, made[2], "--label", f"{SERVICE_LABEL}=huleedu_content_service"
    )
    hand_made(world, made[3], "--label", f"{SERVICE_LABEL}=nginx-proxy")
    try:
        run = world.run()
    finally:
        world.engine.docker("rm", "--force", *made, check=False)
    assert run.done.returncode == 0, run.done.stderr
    assert world.strangers(run) == set(made)
    assert len(world.declared) == 4 and not set(world.declared) & run.items("container")
    assert f"container not declared: hand-made (image {world.image})" in run.done.stdout
    assert world.strangers(world.run()) == set(), "removed, nothing is left"


EARLIER = "1700000000"


def an_earlier_success(world: World) -> None:
    """A previous file whose last success is long past: what a failed run must keep."""
    assert world.run().done.returncode == 0
    metric = world.metrics / "hemma_drift_host.prom"
    metric.write_text(
        re.sub(
            r"(hemma_drift_last_success_timestamp_seconds\{source=\"host\"\}) \d+",
            rf"\1 {EARLIER}",
            metric.read_text(),
        )
    )


def test_docker_down_keeps_the_last_success_and_fails_the_unit(world: World) -> None:
    an_earlier_success(world)
    dead = world.work / "dead-bin" / "docker"
    dead.parent.mkdir(exist_ok=True)
    dead.write_text(
        f"#!/bin/sh\nexport DOCKER_HOST=unix://{world.work}/no-daemon.sock\n"
        f'exec {world.engine.client} "$@"\n'
    )
    dead.chmod(0o755)
    argv = list(world.argv)
    argv[argv.index("--docker") + 1] = str(dead)
    run = world.run(argv)
    assert run.done.returncode == 1
    assert run.value("hemma_drift_check_success") == "0"
    assert run.value("hemma_drift_last_success_timestamp_seconds") == EARLIER
    assert int(run.value("hemma_drift_check_last_run_timestamp_seconds")) > int(EARLIER)
    assert "Cannot connect to the Docker daemon" in run.done.stderr
    assert "docker ps failed: the containers were not checked" in run.done.stderr
    assert "psql in hemma-drift-pg failed: the grants were not checked" in run.done.stderr
    assert run.value("hemma_drift_items", kind="file") == "0", "what could run, ran"
    assert not [s for s in run.samples if s[1].get("kind") in ("grant", "container")]


def test_a_failing_psql_keeps_the_last_success_and_fails_the_unit(world: World) -> None:
    an_earlier_success(world)
    world.psql("ALTER DATABASE postgres RENAME TO postgres_gone", db="template1")
    try:
        run = world.run()
    finally:
        world.psql("ALTER DATABASE postgres_gone RENAME TO postgres", db="template1")
    assert run.done.returncode == 1
    assert run.value("hemma_drift_check_success") == "0"
    assert run.value("hemma_drift_last_success_timestamp_seconds") == EARLIER
    assert 'database "postgres" does not exist' in run.done.stderr
    assert "psql in hemma-drift-pg failed: the grants were not checked" in run.done.stderr
    assert run.value("hemma_drift_items", kind="container") == str(len(world.foreign))
    assert not [s for s in run.samples if s[1].get("kind") == "grant"]

    again = world.run()
    assert again.done.returncode == 0
    last = again.value("hemma_drift_last_success_timestamp_seconds")
    assert last == again.value("hemma_drift_check_last_run_timestamp_seconds") != EARLIER


def test_hostile_names_and_paths_leave_a_valid_textfile(world: World) -> None:
    path = '/etc/hemma/we"ird\\path\nnext'
    container = 'evil"\\name'
    table = 'we"ird\\tab|le\nx'
    manifest = world.path(MANIFEST)
    kept = manifest.read_text()
    manifest.write_text(kept + manifest_line(path, "gone\n"))
    quoted = '"' + table.replace('"', '""') + '"'
    world.psql(f"CREATE ROLE drift_hostile; CREATE TABLE {quoted} (id int)", db="skriptoteket")
    world.psql(f"GRANT SELECT ON {quoted} TO drift_hostile", db="skriptoteket")
    listing = world.work / "hostile-bin" / "docker"
    listing.parent.mkdir(exist_ok=True)
    confined = world.argv[world.argv.index("--docker") + 1]
    # Docker allows no such name (nor a line end in one, which the path and the table
    # carry here): a wrapper adds it to what `ps -a` lists.
    listing.write_text(
        "#!/bin/bash\n"
        f'{confined} "$@" || exit\n'
        '[ "$1 $2 $3" = "ps -a --format" ] || exit 0\n'
        f"printf '%s\\tbusybox\\n' {shlex.quote(container)}\n"
    )
    listing.chmod(0o755)
    argv = list(world.argv)
    argv[argv.index("--docker") + 1] = str(listing)
    try:
        run = world.run(argv)
    finally:
        manifest.write_text(kept)
        world.psql(f"DROP TABLE {quoted}; ", db="skriptoteket")
        world.psql("DROP ROLE drift_hostile")
    assert run.done.returncode == 0, run.done.stderr
    assert path in run.items("file")
    escaped = table.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n")
    assert run.items("grant") == {f"skriptoteket|table public.{escaped}|drift_hostile|SELECT"}
    assert container in world.strangers(run)
    promtool = subprocess.run(
        ["promtool", "check", "metrics"], input=run.text, capture_output=True, text=True
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr


def test_more_than_twenty_items_of_a_kind_end_with_how_many_more(world: World) -> None:
    manifest = world.path(MANIFEST)
    kept = manifest.read_text()
    manifest.write_text(kept + "".join(manifest_line(f"/etc/gone-{i:02}", "") for i in range(23)))
    try:
        run = world.run()
    finally:
        manifest.write_text(kept)
    assert run.value("hemma_drift_items", kind="file") == "23"
    shown = run.items("file")
    assert len(shown) == 21
    assert "... and 3 more" in shown
