"""The adoption of the hand-made server, rehearsed end to end on the private engine
over the real sshd, with exactly the commands of the README's adoption section
(``README_COMMANDS``).

The hand-made server is the runbooks' (``adoption_site.py``). Every ``scripts/adopt``
step runs for real, from a throwaway copy of this checkout, over ssh to the test
user whose ``docker`` is the private engine; psql, pg_authid and the containers are
real. ``scripts/pulumi`` is the one stand-in (``adoption_pulumi.py``): there is no
Pulumi CLI on this machine and none can be installed. What the first successful
``scripts/pulumi up`` does is done here the way the providers do it: the declared
shared-postgres and skriptoteket-web created from the program's own inputs
(``replay.plan_container``, the Engine API calls of terraform-provider-docker) on
the adopted volumes, then the SQL pulumi-postgresql runs for an imported role and
database (``ALTER ROLE ... PASSWORD``, ``ALTER DATABASE ... OWNER TO``, the declared
``REVOKE``), logged in over TCP with the generated admin password as the provider
is, through the published port.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Program, run_program, site_config
from tests.parts.engine import Engine
from tests.parts.ssh import SshServer
from tests.postgres_server import database_sql, grant_sql, pg_tool, quote_ident, role_sql
from tests.rehearsal.adoption_paths import apply_commands, printed_commands
from tests.rehearsal.adoption_site import (
    ARTIFACT,
    CERT,
    CERTS_VOLUME,
    HAND_MADE_ROWS,
    IDLE,
    NETWORK,
    OLD_ADMIN,
    OLD_PASSWORDS,
    PG_VOLUME,
    POSTGRES,
    UNDECLARED,
    Checkout,
    HandMade,
    database_url,
    make_checkout,
    operator_env,
    standin_pulumi,
    wait_ready,
)
from tests.rehearsal.replay import DOCKER_SOCKET, DockerApi, Replayed, plan_container

pytest_plugins = ["tests.parts.fixtures"]

README_COMMANDS: list[tuple[str, str]] = [
    ("plan", "scripts/plan --json plan.json"),
    ("survey", "scripts/adopt survey --plan plan.json"),
    ("config", "scripts/pulumi config set --path ..."),  # each line the survey printed
    ("replan", "scripts/plan --json plan.json"),
    ("preview", "scripts/pulumi preview"),
    ("prepare", "scripts/adopt prepare --plan plan.json --run"),
    ("admin-password", "scripts/adopt admin-password"),
    ("swap-dry-run", "scripts/adopt swap --plan plan.json --dry-run"),
    ("swap", "scripts/adopt swap --plan plan.json"),
    ("up", "scripts/pulumi up"),
    ("ownership", "scripts/adopt ownership --plan plan.json"),
    ("ownership-apply", "scripts/adopt ownership --plan plan.json --apply"),
    ("unimport", "scripts/pulumi config rm import"),
    ("converge", "scripts/pulumi up"),
    ("rollback", "scripts/adopt rollback"),
    ("refresh", "scripts/pulumi refresh"),
    ("finish", "scripts/adopt finish"),
]
"""The README's adoption section, in order. rollback replaces what follows swap
when up fails or the apps misbehave, and refresh comes before trying again (then
admin-password, swap, up); finish comes once the new server is verified."""
COMMANDS = dict(README_COMMANDS)
PROBE = "adoption-probe"
SECOND_POSTGRES = "postgres-old"
CREATED_BY_UP = "grafana"
AS_ADMIN = "reports-as-postgres"
"""An undeclared app of the hand-made server that logs in as postgres."""
"""A declared container the hand-made server does not have."""
NEW = (POSTGRES, "skriptoteket-web")
"""The containers the rehearsed first up creates (the others are stand-ins' business)."""


@dataclass
class Operator:
    """The operator's shell: README commands, run from the work directory."""

    checkout: Checkout
    work: Path
    env: dict[str, str]
    ssh: list[str]
    ran: list[tuple[str, float]] = field(default_factory=list)

    def argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        if words[0] == "scripts/pulumi":
            return [*shlex.split(standin_pulumi()), *words[1:]]
        argv = [str(self.checkout.root / words[0]), *words[1:]]
        if words[0] == "scripts/adopt":
            argv += [*self.ssh, "--pulumi", standin_pulumi()]
        return argv

    def run(self, command: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            self.argv(command), cwd=self.work, env=self.env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
        self.ran.append((command, time.monotonic() - started))
        assert done.returncode == expect, (
            f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done

    def step(self, key: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return self.run(COMMANDS[key], expect)


def probe_psql(
    engine: Engine, pg_image: str, url: str, sql: str
) -> subprocess.CompletedProcess[str]:
    """psql from a client container on hule-network, as an app connects."""
    state = engine.docker("inspect", "--format", "{{.State.Running}}", PROBE, check=False)
    if state.returncode != 0:
        engine.docker(
            "run", "-d", "--name", PROBE, "--network", NETWORK, "--entrypoint", "sleep",
            pg_image, "infinity",
        )  # fmt: skip
    elif state.stdout.strip() != "true":
        engine.docker("start", PROBE)
    return engine.docker(
        "exec", PROBE, "psql", url, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql, check=False
    )


def provider_sql(program: Program, port: int, admin: str, sql: str) -> str:
    """SQL as pulumi-postgresql sends it: over TCP, as postgres, with the generated password."""
    done = subprocess.run(
        [pg_tool("psql"), f"postgresql://postgres:{admin}@127.0.0.1:{port}/postgres",
         "-X", "-qAt", "-v", "ON_ERROR_STOP=1"],
        input=sql, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def create_containers(
    engine: Engine, program: Program, pg_image: str, app_image: str, base: Path
) -> None:
    """The declared shared-postgres and skriptoteket-web, created as the provider does;
    their host paths live under ``base``, which the rehearsal removes."""
    host_root = Path(tempfile.mkdtemp(prefix="host-", dir=base))
    replay = Replayed(
        engine=engine, program=program, api=DockerApi(engine.socket), host_root=host_root
    )
    for name, image in ((POSTGRES, pg_image), ("skriptoteket-web", app_image)):
        plan = plan_container(
            program.container(name), image, {DOCKER_SOCKET: str(engine.socket)}, 180, host_root
        )
        if name != POSTGRES:
            plan.create["Entrypoint"] = ["sh", "-c", IDLE, "--"]  # the stand-in app
        replay.plans[name] = plan
        replay.create_container(plan)
    wait_ready(engine, POSTGRES)


def first_up(engine: Engine, program: Program, pg_image: str, app_image: str, base: Path) -> None:
    """What the first successful up does to shared-postgres, its data and one app."""
    create_containers(engine, program, pg_image, app_image, base)
    admin = str(program.outputs["postgresAdminPassword"])
    port = next(int(p["external"]) for p in program.container(POSTGRES).inputs["ports"])
    roles = set(provider_sql(program, port, admin, "SELECT rolname FROM pg_roles;").split())
    databases = set(provider_sql(program, port, admin, "SELECT datname FROM pg_database;").split())
    statements = []
    for role in program.of_type("postgresql:index/role:Role"):
        i = role.inputs
        if i["name"] in roles:  # imported, then updated: terraform-provider-postgresql's SQL
            if "password" not in role.ignore_changes:  # the engine diffs only what is not ignored
                statements.append(f"ALTER ROLE {quote_ident(i['name'])} PASSWORD '{i['password']}'")
        else:
            statements.append(role_sql(role))
    for database in program.of_type("postgresql:index/database:Database"):
        i = database.inputs
        if i["name"] in databases:
            if "owner" in database.ignore_changes:
                continue
            statements.append(
                f"ALTER DATABASE {quote_ident(i['name'])} OWNER TO {quote_ident(i['owner'])}"
            )
        else:
            statements.append(database_sql(database))
    statements += [grant_sql(g) for g in program.of_type("postgresql:index/grant:Grant")]
    provider_sql(program, port, admin, "".join(f"{s};\n" for s in statements))


@dataclass
class Rehearsal:
    engine: Engine
    operator: Operator
    hand_made: HandMade
    program: Program
    config: dict[str, Any]
    pg_image: str
    printed: list[list[str]]
    base: Path
    outputs: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self.engine.docker("inspect", name).stdout)[0]

    def exists(self, name: str) -> bool:
        return self.engine.docker("inspect", name, check=False).returncode == 0

    def psql(self, url: str, sql: str) -> subprocess.CompletedProcess[str]:
        return probe_psql(self.engine, self.pg_image, url, sql)

    def admin(self, sql: str, database: str = "postgres") -> str:
        password = str(self.program.outputs["postgresAdminPassword"])
        done = self.psql(database_url("postgres", password, database), sql)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def rehearsal(
    engine: Engine, ssh_server: SshServer, pg_image: str, busybox_image: str
) -> Iterator[Rehearsal]:
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="hemma-adoption-"))
    work, state = base / "work", base / "pulumi"
    work.mkdir()
    state.mkdir()
    checkout = make_checkout(base)
    hand_made = HandMade(engine)

    def clean_up() -> None:
        try:
            hand_made.remove({*NEW, PROBE, SECOND_POSTGRES, CREATED_BY_UP, AS_ADMIN})
        finally:
            ssh_server.ssh("rm -rf ~/.hemma-adoption", check=False)
            subprocess.run(["rm", "-rf", str(base)], check=False)

    try:
        hand_made.build(pg_image, busybox_image)
        env = operator_env(ssh_server, state, work / "plan.json", checkout.stack_file, admin="")
        ssh = ["--ssh", f"{ssh_server.user}@{ssh_server.host}", "--ssh-port", str(ssh_server.port)]
        operator = Operator(checkout, work, env, ssh)
        timings = {"hand-made server": time.monotonic() - started}

        operator.step("plan")
        surveyed = operator.step("survey").stdout
        printed = printed_commands(surveyed)
        for command in printed:
            operator.run(shlex.join(command))
        config = apply_commands(site_config(), printed)
        program = run_program(config)
        operator.env["ADOPTION_ADMIN_PASSWORD"] = str(program.outputs["postgresAdminPassword"])
        operator.env["ADOPTION_ROLE_PASSWORDS"] = json.dumps(
            {
                str(role.inputs["name"]): str(role.inputs["password"])
                for role in program.of_type("postgresql:index/role:Role")
            }
        )
        operator.step("replan")
        operator.step("preview")
        r = Rehearsal(
            engine, operator, hand_made, program, config, pg_image, printed, base, timings=timings
        )
        r.outputs["survey"] = surveyed
        r.outputs["prepare"] = operator.step("prepare").stdout
        r.seen["running after prepare"] = {
            n: r.inspect(n)["State"]["Running"] for n in hand_made.ids
        }
        # An app that logs in as postgres would lose its login before the outage.
        engine.docker(
            "run", "-d", "--name", AS_ADMIN, "--network", NETWORK, "--entrypoint", "sh",
            "-e", f"DATABASE_URL=postgresql://postgres:{OLD_ADMIN}@{POSTGRES}:5432/postgres",
            busybox_image, "-c", IDLE,
        )  # fmt: skip
        r.outputs["admin-password with an app as postgres"] = operator.run(
            COMMANDS["admin-password"], expect=2
        ).stderr
        r.seen["old admin after the refusal"] = r.psql(
            database_url("postgres", OLD_ADMIN, "postgres"), "SELECT 1"
        ).returncode
        engine.docker("rm", "--force", AS_ADMIN)
        r.outputs["admin-password"] = operator.step("admin-password").stdout
        # Before the up the databases are still postgres's: refused, nothing changed.
        r.outputs["ownership before up"] = operator.run(COMMANDS["ownership"], expect=2).stderr
        admin = str(program.outputs["postgresAdminPassword"])
        r.seen["old server, generated admin"] = r.psql(
            database_url("postgres", admin, "postgres"), "SELECT 1"
        ).returncode
        r.seen["old server, old admin"] = r.psql(
            database_url("postgres", OLD_ADMIN, "postgres"), "SELECT 1"
        ).returncode
        r.outputs["swap-dry-run"] = operator.step("swap-dry-run").stdout
        # A second, undeclared postgres on the same data, stopped but restart always.
        engine.docker(
            "create", "--name", SECOND_POSTGRES, "--restart", "always",
            "-v", f"{PG_VOLUME}:/var/lib/postgresql/data", pg_image,
        )  # fmt: skip
        r.outputs["swap with a second postgres"] = operator.run(COMMANDS["swap"], expect=2).stderr
        engine.docker("rm", SECOND_POSTGRES)
        r.seen["running after the refused swap"] = {
            n: r.inspect(n)["State"]["Running"] for n in hand_made.ids
        }
        swap_started = time.monotonic()
        r.outputs["swap"] = operator.step("swap").stdout
        r.outputs["finish before up"] = operator.run(COMMANDS["finish"], expect=2).stderr
        r.timings["swap"] = time.monotonic() - swap_started
        r.seen["record"] = json.loads(
            ssh_server.ssh("cat ~/.hemma-adoption/containers.json").stdout
        )
        operator.step("up")
        up_started = time.monotonic()
        first_up(engine, program, pg_image, busybox_image, base)
        # One the up creates under a name Hemma did not have (a stand-in of it).
        engine.docker(
            "run", "-d", "--name", CREATED_BY_UP, "--restart", "always", "--entrypoint", "sh",
            busybox_image, "-c", IDLE,
        )  # fmt: skip
        r.timings["first up (rehearsed)"] = time.monotonic() - up_started
        r.timings["outage: swap + first up"] = time.monotonic() - swap_started
        r.outputs["ownership"] = operator.step("ownership").stdout
        r.outputs["ownership-apply"] = operator.step("ownership-apply").stdout
        r.timings["up to ownership"] = time.monotonic() - started
        yield r
    except BaseException:
        # The failure that stopped the set-up is the one to see, not one of the clean-up.
        with contextlib.suppress(Exception):
            clean_up()
        raise
    clean_up()
    for what, seconds in r.timings.items():
        print(f"adoption rehearsal: {what}: {seconds:.1f} s")
    for line, seconds in operator.ran:
        print(f"adoption rehearsal: {seconds:5.1f} s  {line}")


def readme_adoption_commands() -> list[str]:
    """The command lines of the README's adoption section, comments dropped.

    The main path is in `bash` blocks; a recipe for one case only (data kept at
    another path) is in an `sh` block and is not part of the rehearsed order.
    """
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Adopting the running hand-made server", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_the_readme_lists_exactly_the_rehearsed_commands_in_order() -> None:
    assert readme_adoption_commands() == [command for _, command in README_COMMANDS]


# --- before the outage -----------------------------------------------------------------


def test_the_survey_prints_the_config_that_adopts_the_data(rehearsal: Rehearsal) -> None:
    r = rehearsal
    network_id = r.engine.inspect(NETWORK, "{{.Id}}")
    expected = {
        ("postgres.dataVolume", PG_VOLUME),
        ("proxy.certsVolume", CERTS_VOLUME),
        ('volumeNames["skriptoteket-artifacts"]', "skriptoteket_artifacts"),
        ('import["network/hule-network"]', network_id),
        *(
            (f'import["volume/{v}"]', v)
            for v in (PG_VOLUME, CERTS_VOLUME, "skriptoteket_artifacts")
        ),
        *(
            (f'import["database/{d}"]', d)
            for d in r.program.outputs["appDatabases"]["huleedu"]["databases"]
        ),
        ('import["database/skriptoteket"]', "skriptoteket"),
        ('import["role/huleedu_user"]', "huleedu_user"),
        ('import["role/skriptoteket"]', "skriptoteket"),
    }
    assert {(c[4], c[5]) for c in r.printed} == expected
    # Each name is set before the import that uses it (the config check wants both).
    paths = [c[4] for c in r.printed]
    assert paths.index("postgres.dataVolume") < paths.index(f'import["volume/{PG_VOLUME}"]')
    survey = r.outputs["survey"]
    assert re.search(r"shared-postgres +running +always +infrastructure", survey)
    assert f"On Hemma, not declared (left alone): {UNDECLARED}" in survey
    # The program takes the config: it mounts the adopted volumes and imports them.
    mounts = {
        v["containerPath"]: v.get("volumeName")
        for v in r.program.container(POSTGRES).inputs["volumes"]
    }
    assert mounts["/var/lib/postgresql/data"] == PG_VOLUME
    imported = {d.import_id for d in r.program.declared if d.import_id}
    assert {PG_VOLUME, "huleedu_user", network_id} <= imported


def test_prepare_builds_and_pulls_every_image_before_anything_stops(rehearsal: Rehearsal) -> None:
    r = rehearsal
    log = [
        json.loads(line)
        for line in (Path(r.operator.env["ADOPTION_STATE"]) / "argv.log").read_text().splitlines()
    ]
    ups = [argv for argv in log if argv[:1] == ["up"]]
    targeted, plain = ups[0], ups[1:]
    targets = {targeted[i + 1] for i, a in enumerate(targeted) if a == "--target"}
    plan = json.loads((r.operator.work / "plan.json").read_text())
    names = {res["urn"]: res for res in plan["resources"]}
    images = {
        u
        for u, res in names.items()
        if res["type"] == "docker:index/remoteImage:RemoteImage"
        or (res["type"] == "command:local:Command" and res["name"].endswith("-image"))
    }
    assert images <= targets and len(images) >= 30
    assert any(names[u]["name"] == "shared-postgres-admin-password" for u in targets)
    assert not any(names[u]["type"] == "docker:index/container:Container" for u in targets)
    assert plain == [["up"]], "the one full up comes after the swap"
    assert r.seen["running after prepare"] == dict.fromkeys(r.hand_made.ids, True)


def test_admin_password_refuses_while_an_app_logs_in_as_postgres(rehearsal: Rehearsal) -> None:
    refused = rehearsal.outputs["admin-password with an app as postgres"]
    assert f"{AS_ADMIN}: DATABASE_URL log in as postgres" in refused
    assert OLD_ADMIN not in refused
    assert rehearsal.seen["old admin after the refusal"] == 0, "nothing changed"


def test_the_old_server_takes_the_generated_admin_password_before_the_swap(
    rehearsal: Rehearsal,
) -> None:
    assert rehearsal.seen["old server, generated admin"] == 0
    assert rehearsal.seen["old server, old admin"] != 0
    assert "verified" in rehearsal.outputs["admin-password"]
    assert str(rehearsal.program.outputs["postgresAdminPassword"]) not in "".join(
        rehearsal.outputs.values()
    )


def test_the_swap_records_and_keeps_the_old_containers_stopped_with_restart_no(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    assert "(dry run: nothing changed)" in r.outputs["swap-dry-run"]
    record = r.seen["record"]
    declared = set(r.program.services)
    kept = {c["name"]: c for c in record["containers"]}
    assert set(kept) == set(r.hand_made.ids) & declared
    assert {n: c["restart"] for n, c in kept.items()} == {n: r.hand_made.restart[n] for n in kept}
    assert {n: c["id"] for n, c in kept.items()} == {n: r.hand_made.ids[n] for n in kept}
    assert record["containers"][-1]["name"] == POSTGRES, "shared-postgres stops last"
    for name in kept:
        old = r.inspect(r.hand_made.ids[name])
        assert old["Name"] == f"/{name}-pre-hemma"
        assert old["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert r.inspect(UNDECLARED)["State"]["Running"], (
        "what the stack does not declare is left alone"
    )


def test_the_swap_refuses_while_a_second_postgres_could_start_on_the_data(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    refused = r.outputs["swap with a second postgres"]
    assert f"{SECOND_POSTGRES} (restart always, stopped) mount {POSTGRES}'s data volume" in refused
    assert r.seen["running after the refused swap"] == dict.fromkeys(r.hand_made.ids, True)


def test_finish_refuses_while_nothing_replaces_the_old_containers(rehearsal: Rehearsal) -> None:
    refused = rehearsal.outputs["finish before up"]
    assert refused.startswith("adopt finish: refused: nothing runs in place of ")
    assert f"{POSTGRES}-pre-hemma" in refused


# --- after the first up ------------------------------------------------------------------


def test_every_row_and_file_is_still_there(rehearsal: Rehearsal) -> None:
    r = rehearsal
    notes = r.admin("SELECT note FROM public.hand_made ORDER BY id", "huleedu_content").split()
    assert tuple(notes) == HAND_MADE_ROWS
    assert r.admin("SELECT count(*) FROM app.events", "huleedu_content") == "2"
    new_server = r.inspect(POSTGRES)
    assert new_server["Id"] != r.hand_made.ids[POSTGRES]
    assert {m["Name"] for m in new_server["Mounts"]} == {PG_VOLUME}
    artifact = r.engine.docker(
        "exec", r.program.container("skriptoteket-web").inputs["name"], "cat", ARTIFACT
    ).stdout
    assert artifact == "made by hand\n"
    certs = r.engine.docker(
        "run",
        "--rm",
        "-v",
        f"{CERTS_VOLUME}:/c",
        "--entrypoint",
        "cat",
        r.pg_image,
        "/c/" + Path(CERT).name,
    )
    assert certs.stdout == "certificate\n"


def test_ownership_before_the_up_is_refused_and_says_nothing_ran(rehearsal: Rehearsal) -> None:
    refused = rehearsal.outputs["ownership before up"]
    assert refused.startswith("adopt ownership: refused: ")
    assert "is owned by postgres, not huleedu_user" in refused
    assert refused.rstrip().endswith("Run `scripts/pulumi up`, then this; nothing was changed")


def test_ownership_hands_the_hand_made_tables_to_the_app_and_leaves_extensions_alone(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    listed = r.outputs["ownership"]
    assert "TABLE public.hand_made (owner postgres)" in listed
    assert "VIEW public.hand_made_notes (owner postgres)" in listed
    assert "pg_stat_statements" not in listed, "an extension's view is the extension's"
    assert "hand_made_id_seq" not in listed, "a serial's sequence follows its table"
    assert "app.events" not in listed
    assert "done: huleedu_content is all huleedu_user's" in r.outputs["ownership-apply"]
    owners = r.admin(
        "SELECT c.relname || '=' || pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1",
        "huleedu_content",
    ).split()
    assert "hand_made=huleedu_user" in owners and "hand_made_id_seq=huleedu_user" in owners
    assert "pg_stat_statements=postgres" in owners


def test_the_apps_new_connection_strings_log_in_create_tables_and_migrate(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    problems = []
    for app, urls in r.program.outputs["appConnectionStrings"].items():
        for database, url in urls.items():
            done = r.psql(url, "CREATE TABLE adoption_probe (id int); SELECT current_user")
            if done.returncode != 0:
                problems.append(f"{app}/{database}: {done.stderr.strip()}")
    assert not problems, "\n".join(problems)
    # A migration of the app: it alters the table the operator made as postgres.
    url = r.program.outputs["appConnectionStrings"]["huleedu"]["huleedu_content"]
    done = r.psql(
        url,
        "ALTER TABLE public.hand_made ADD COLUMN migrated boolean; "
        "INSERT INTO public.hand_made (note) VALUES ('from the app')",
    )
    assert done.returncode == 0, done.stderr


def test_the_app_roles_are_not_superusers_and_stay_out_of_other_apps_databases(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    supers = r.admin("SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1").split()
    assert supers == ["postgres"]
    urls = r.program.outputs["appConnectionStrings"]
    skriptoteket = urls["skriptoteket"]["skriptoteket"]
    huleedu = urls["huleedu"]["huleedu_content"]
    for url, other in ((skriptoteket, "huleedu_content"), (huleedu, "skriptoteket")):
        done = r.psql(url.rsplit("/", 1)[0] + "/" + other, "SELECT 1")
        assert done.returncode != 0 and "permission denied for database" in done.stderr


def test_removing_the_import_list_changes_nothing_the_program_declares(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    r.operator.step("unimport")
    without = run_program({k: v for k, v in r.config.items() if k != "import"})
    before = {d.urn: d.inputs for d in r.program.declared}
    after = {d.urn: d.inputs for d in without.declared}
    assert before.keys() == after.keys()
    changed = [u for u in before if before[u] != after[u] and "Password" not in u]
    assert changed == []
    r.operator.step("converge")


def test_a_daemon_restart_brings_the_new_server_back_and_never_the_old_one(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    r.engine.restart()
    r.engine.wait_for(POSTGRES, "{{.State.Running}}", "true", timeout=60, exited_is_final=False)
    wait_ready(r.engine, POSTGRES)
    came_back = [
        r.inspect(kept["id"])["Name"].lstrip("/")
        for kept in r.seen["record"]["containers"]
        if r.inspect(kept["id"])["State"]["Running"]
    ]
    listed = r.engine.docker("ps", "--filter", f"volume={PG_VOLUME}", "--format", "{{.Names}}")
    on_the_data = sorted(listed.stdout.split())
    assert (came_back, on_the_data) == ([], [POSTGRES]), (
        f"came back: {came_back}; running on {PG_VOLUME}: {on_the_data}"
    )
    assert r.admin("SELECT count(*) FROM public.hand_made", "huleedu_content") == "4"


# --- the way back, and the way forward ---------------------------------------------------


def _old_logins_work(r: Rehearsal) -> list[str]:
    problems = []
    logins = [
        ("postgres", OLD_ADMIN, "postgres"),
        ("huleedu_user", OLD_PASSWORDS["huleedu_user"], "huleedu_content"),
        ("skriptoteket", OLD_PASSWORDS["skriptoteket"], "skriptoteket"),
    ]
    for role, password, database in logins:
        done = r.psql(database_url(role, password, database), "SELECT current_user")
        if done.stdout.strip() != role:
            problems.append(f"{role}: {done.stderr.strip()}")
    return problems


def test_rollback_brings_the_old_server_back_with_its_old_passwords_and_is_safe_twice(
    rehearsal: Rehearsal,
) -> None:
    r = rehearsal
    new_ids = {n: r.inspect(r.program.container(n).inputs["name"])["Id"] for n in NEW}
    first = r.operator.step("rollback")
    for name, old_id in r.hand_made.ids.items():
        got = r.inspect(name)
        assert got["Id"] == old_id, f"{name} is not the old container"
        assert got["State"]["Running"], name
        assert got["HostConfig"]["RestartPolicy"]["Name"] == r.hand_made.restart[name]
        assert not r.exists(f"{name}-pre-hemma")
    assert not any(r.exists(i) for i in new_ids.values()), "the new containers are gone"
    assert CREATED_BY_UP in r.seen["record"]["new"]
    assert not r.exists(CREATED_BY_UP), "what the up created under a new name is gone too"
    assert _old_logins_work(r) == []
    generated = r.program.outputs["appConnectionStrings"]["skriptoteket"]["skriptoteket"]
    assert r.psql(generated, "SELECT 1").returncode != 0
    assert "skriptoteket-web: DATABASE_URL" in first.stdout
    assert "huleedu_content_service: HULEEDU_DB_USER/HULEEDU_DB_PASSWORD" in first.stdout
    assert "SMTP" not in first.stdout + first.stderr
    assert OLD_PASSWORDS["huleedu_user"] not in first.stdout + first.stderr

    r.operator.step("rollback")
    assert {n: r.inspect(n)["Id"] for n in r.hand_made.ids} == r.hand_made.ids
    assert _old_logins_work(r) == []


def test_a_retry_after_a_rollback_logs_the_apps_in_and_finish_removes_only_the_kept(
    rehearsal: Rehearsal, busybox_image: str
) -> None:
    """rollback, refresh, admin-password, swap, up: the state holds the roles with
    their generated passwords, which the second up does not set again (see swap)."""
    r = rehearsal
    r.operator.step("rollback")
    assert _old_logins_work(r) == []
    r.operator.step("refresh")
    r.operator.step("admin-password")
    r.operator.step("swap")
    kept = [c["name"] for c in r.seen["record"]["containers"]]
    assert all(r.exists(f"{n}-pre-hemma") for n in kept)
    r.operator.step("up")
    create_containers(r.engine, r.program, r.pg_image, busybox_image, r.base)  # no SQL
    for other in sorted(set(kept) - set(NEW)):  # stand-ins of the rest the up creates
        r.engine.docker(
            "run", "-d", "--name", other, "--entrypoint", "sh", busybox_image, "-c", IDLE
        )  # fmt: skip
    problems = []
    for app, urls in r.program.outputs["appConnectionStrings"].items():
        for database, url in urls.items():
            if r.psql(url, "SELECT 1").returncode != 0:
                problems.append(f"{app}/{database}")
    assert problems == [], "the retried up's apps cannot log in"
    r.operator.step("finish")
    assert not any(r.exists(r.hand_made.ids[n]) for n in kept)
    assert r.exists(UNDECLARED)
    volumes = set(r.engine.docker("volume", "ls", "--format", "{{.Name}}").stdout.split())
    assert {PG_VOLUME, CERTS_VOLUME, "skriptoteket_artifacts"} <= volumes
    assert r.operator.run(COMMANDS["finish"], expect=2).stderr.startswith(
        "adopt finish: refused: no swap"
    )
