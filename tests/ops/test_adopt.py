"""scripts/adopt's parts, without Hemma: the stack export, PostgreSQL's password
verifiers (made by a real PostgreSQL), the targets of the up before the outage (from
a real ``scripts/plan --json``), quoting and refusals, and the survey's commands.

The rehearsal on real parts is tests/rehearsal/test_adoption.py.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.adopt import cli as adopt
from ops.adopt import shell as adopt_shell
from ops.adopt.observe import Catalog, Observed, parse_docker
from ops.adopt.passwords import (
    SECRET_SIG,
    SIG_KEY,
    Login,
    env_logins,
    export_password,
    export_role_passwords,
    old_passwords,
    scram_verifier,
    verifier_matches,
)
from ops.adopt.plan import (
    ADMIN_PASSWORD,
    LOCAL_COMMAND,
    PASSWORD,
    REMOTE_IMAGE,
    Plan,
    prepare_targets,
    untargeted_creates,
)
from ops.adopt.postgres import Pulumi
from ops.adopt.record import _from_json
from ops.adopt.shell import Hemma, Refused, name, quote_ident, quote_literal
from ops.adopt.survey import survey
from ops.adopt.swap import _others_on_the_data
from ops.remote import Answer
from tests.harness import ROOT, run_program, site_config
from tests.postgres_server import Server
from tests.rehearsal.adoption_paths import apply_commands, parse_path, printed_commands

PYTHON = sys.executable
SET = ["scripts/pulumi", "config", "set", "--path"]
GENERATED = "aA1" + "x" * 30 + "0123456"
PROVIDER = "shared-postgres-provider"
CONTAINER = "shared-postgres-container"


# --- the stack export ---------------------------------------------------------------


def export(result: Any, name_: str = ADMIN_PASSWORD, extra: list[Any] | None = None) -> str:
    urn = f"urn:pulumi:hemma::hemma::hemma:database:SharedPostgres${PASSWORD}::{name_}"
    resources = [
        {"urn": "urn:pulumi:hemma::hemma::pulumi:pulumi:Stack::hemma-hemma", "type": "x"},
        {"urn": urn, "type": PASSWORD, "outputs": {"result": result, "length": 40}},
        *(extra or []),
    ]
    return json.dumps({"version": 3, "deployment": {"manifest": {}, "resources": resources}})


def shown(value: str) -> dict[str, str]:
    return {SIG_KEY: SECRET_SIG, "plaintext": json.dumps(value)}


def test_the_password_comes_from_a_secret_output_shown_with_show_secrets() -> None:
    assert export_password(export(shown(GENERATED))) == GENERATED


def test_a_plain_output_and_a_status_line_before_the_json_are_read_too() -> None:
    assert export_password("tunnel open on 127.0.0.1:15432\n" + export(GENERATED)) == GENERATED


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({SIG_KEY: SECRET_SIG, "ciphertext": "v1:AAAA"}, "--show-secrets"),
        (shown(""), "empty"),
        ("", "empty"),
        (None, "empty"),
        (shown(GENERATED[:39]), "not 40 letters and digits"),
        (shown(GENERATED[:39] + "-"), "not 40 letters and digits"),
        (shown(GENERATED + "0"), "not 40 letters and digits"),
        (shown(GENERATED[:39] + "'"), "not 40 letters and digits"),
        ({SIG_KEY: SECRET_SIG, "plaintext": "not json"}, "is not JSON"),
    ],
)
def test_an_unusable_password_is_refused_without_showing_it(result: Any, why: str) -> None:
    with pytest.raises(Refused, match=why) as refused:
        export_password(export(result))
    assert GENERATED[:20] not in str(refused.value)


def test_a_stack_without_the_password_or_with_two_is_refused() -> None:
    empty = json.dumps({"version": 3, "deployment": {"manifest": {}, "resources": None}})
    with pytest.raises(Refused, match="prepare --run"):
        export_password(empty)
    with pytest.raises(Refused, match="prepare --run"):
        export_password(export(shown(GENERATED), name_="grafana-admin-password"))
    twice = json.loads(export(shown(GENERATED)))
    twice["deployment"]["resources"].append(twice["deployment"]["resources"][1])
    with pytest.raises(Refused, match="2 resources"):
        export_password(json.dumps(twice))
    with pytest.raises(Refused, match="not JSON"):
        export_password("error: no stack")


def role(name_: str, password: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:hemma::hemma::hemma:app:App$postgresql:index/role:Role::{name_}-role",
        "type": "postgresql:index/role:Role",
        "outputs": {"name": name_, "password": password, "login": True},
    }


def test_the_roles_the_state_holds_come_with_their_generated_passwords() -> None:
    other = GENERATED[::-1]
    text = export(shown(GENERATED), extra=[role("skriptoteket", shown(other))])
    assert export_role_passwords(text) == {"skriptoteket": other}
    assert export_role_passwords(export(shown(GENERATED))) == {}, "before the first full up"


@pytest.mark.parametrize(
    "password",
    [{SIG_KEY: SECRET_SIG, "ciphertext": "v1:x"}, shown(""), shown("short"), None, 7],
)
def test_a_role_password_the_swap_could_not_use_is_refused_without_showing_it(
    password: Any,
) -> None:
    with pytest.raises(Refused) as refused:
        export_role_passwords(export(shown(GENERATED), extra=[role("skriptoteket", password)]))
    assert "short" not in str(refused.value)


# --- verifiers made by a real PostgreSQL --------------------------------------------


@pytest.fixture
def verifier(server: Server) -> Iterator[Any]:
    made: list[str] = []

    def make(role: str, password: str, method: str) -> str:
        made.append(role)
        server.admin(
            f"SET password_encryption = '{method}'; "
            f"CREATE ROLE {quote_ident(role)} PASSWORD {quote_literal(password)}"
        )
        return server.admin(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")

    yield make
    for role in made:
        server.admin(f"DROP ROLE {quote_ident(role)}")


@pytest.mark.parametrize(
    "password", [GENERATED, "it's a \\ secret", "pässwörd ünïcode", "ﬁne-ligature"]
)
def test_scram_verifiers_match_their_password_only(verifier: Any, password: str) -> None:
    stored = verifier("adopt_scram", password, "scram-sha-256")
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert verifier_matches(stored, password, "adopt_scram")
    assert not verifier_matches(stored, password + "x", "adopt_scram")
    assert not verifier_matches(stored, "", "adopt_scram")


def test_md5_verifiers_match_their_password_and_role_only(verifier: Any) -> None:
    stored = verifier("adopt_md5", GENERATED, "md5")
    assert stored.startswith("md5") and len(stored) == 35
    assert verifier_matches(stored, GENERATED, "adopt_md5")
    assert not verifier_matches(stored, GENERATED, "another_role")
    assert not verifier_matches(stored, GENERATED[:-1], "adopt_md5")


def test_a_verifier_made_here_is_stored_as_sent_and_takes_the_password(server: Server) -> None:
    made = scram_verifier(GENERATED)
    assert verifier_matches(made, GENERATED, "any") and not verifier_matches(made, "x", "any")
    server.admin(f"CREATE ROLE adopt_sent LOGIN PASSWORD {quote_literal(made)}")
    try:
        stored = server.admin("SELECT rolpassword FROM pg_authid WHERE rolname = 'adopt_sent'")
        assert stored == made, "the server kept the verifier: the statement held no password"
        ok = server.psql("SELECT current_user", user="adopt_sent", password=GENERATED)
        assert ok.returncode == 0 and ok.stdout.strip() == "adopt_sent", ok.stderr
        wrong = server.psql("SELECT 1", user="adopt_sent", password=GENERATED[:-1] + "x")
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    finally:
        server.admin("DROP ROLE adopt_sent")
    with pytest.raises(ValueError):
        scram_verifier("pässwörd")


@pytest.mark.parametrize(
    "stored", ["", "SCRAM-SHA-256$0:AAAA$AAAA:AAAA", "SCRAM-SHA-256$4096:!!$x:y", GENERATED]
)
def test_no_verifier_or_a_broken_one_matches_nothing(stored: str) -> None:
    assert not verifier_matches(stored, GENERATED, "postgres")


def test_quoted_literals_and_identifiers_mean_the_value_to_postgresql(server: Server) -> None:
    value = "it's a \\ back'slash\\' \"quoted\""
    literal, column = quote_literal(value), quote_ident('we"ird')
    for setting in ("on", "off"):
        got = server.admin(
            f"SET standard_conforming_strings = {setting}; SELECT {literal} AS {column}"
        ).splitlines()[-1]
        assert got == value
    with pytest.raises(Refused):
        quote_literal("nul\0byte")


# --- the targets of the up before the outage ------------------------------------------


def plan_with(data: dict[str, Any], provider_waits_on_container: bool) -> dict[str, Any]:
    """The plan with shared-postgres-provider depending on the container or not: the
    program before its provider stopped waiting for the container, and today."""
    data = copy.deepcopy(data)
    by_name = {r["name"]: r for r in data["resources"]}
    deps = by_name[PROVIDER]["options"]["dependencies"]
    container = by_name[CONTAINER]["urn"]
    if provider_waits_on_container and container not in deps:
        deps.append(container)
    if not provider_waits_on_container:
        deps[:] = [d for d in deps if d != container]
    return data


def test_the_targets_are_every_image_the_admin_password_and_their_parents(
    plan_json: dict[str, Any],
) -> None:
    plan = Plan(plan_json, "plan.json")
    targets = prepare_targets(plan)
    names = {r.name for r in targets}
    remote = {r.name for r in plan.of_type(REMOTE_IMAGE)}
    built = {
        r.name
        for r in plan.of_type(LOCAL_COMMAND)
        if r.name.endswith("-image") or "-extra-image-" in r.name
    }
    assert len(remote) >= 13 and len(built) >= 19 and "skriptoteket-web-extra-image-0" in built
    parents = {
        r.urn.split("::")[-2].split("$")[-1] + "::" + r.name for r in targets if not r.custom
    }
    assert parents == {
        "hemma:proxy:ProxyStack::proxy",
        "hemma:database:SharedPostgres::shared-postgres",
        "hemma:app:App::huleedu",
        "hemma:app:App::skriptoteket",
        "hemma:app:App::observability",
    }
    assert names == remote | built | {ADMIN_PASSWORD} | {r.name for r in targets if not r.custom}
    chosen = {r.urn for r in targets}
    for r in targets:
        parent = r.parent
        while parent in plan.resources:
            assert parent in chosen, f"{r.name}: its ancestor {parent} is not targeted"
            parent = plan.resources[parent].parent
    kinds = {r.type for r in targets}
    assert kinds == {
        REMOTE_IMAGE,
        LOCAL_COMMAND,
        PASSWORD,
        *(r.type for r in targets if not r.custom),
    }


def test_a_provider_that_waits_on_the_container_makes_the_targeted_up_impossible(
    plan_json: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_with(plan_json, provider_waits_on_container=True)
    plan = Plan(data, "plan.json")
    gaps = [(r.name, d.name) for r, d in untargeted_creates(plan, prepare_targets(plan))]
    assert gaps == [(PROVIDER, CONTAINER)]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    assert adopt.main(["prepare", "--plan", str(path)]) == 2
    error = capsys.readouterr().err
    assert "untargeted create" in error and PROVIDER in error and CONTAINER in error


def test_the_program_as_it_is_has_no_untargeted_create(plan_json: dict[str, Any]) -> None:
    plan = Plan(plan_json, "plan.json")
    assert untargeted_creates(plan, prepare_targets(plan)) == []


def test_without_that_wait_prepare_prints_the_command_with_every_urn_quoted(
    plan_json: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_with(plan_json, provider_waits_on_container=False)
    plan = Plan(data, "plan.json")
    assert untargeted_creates(plan, prepare_targets(plan)) == []
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    assert adopt.main(["prepare", "--plan", str(path)]) == 0
    out = capsys.readouterr().out
    command = out[out.index("scripts/pulumi up") : out.index("(printed only")]
    argv = shlex.split(command.replace("\\\n", " "))
    expected = ["scripts/pulumi", "up"]
    for r in prepare_targets(plan):
        expected += ["--target", r.urn]
    assert argv == expected
    assert (
        "'urn:pulumi:hemma::hemma::hemma:app:App$command:local:Command::skriptoteket-web-image'"
        in out
    )


def test_a_target_under_a_custom_parent_or_a_glob_urn_is_refused(plan_json: dict[str, Any]) -> None:
    data = copy.deepcopy(plan_json)
    by_name = {r["name"]: r for r in data["resources"]}
    by_name["shared-postgres-image"]["parent"] = by_name[CONTAINER]["urn"]
    with pytest.raises(Refused, match="would create that resource"):
        prepare_targets(Plan(data, "plan.json"))
    data = copy.deepcopy(plan_json)
    image = next(r for r in data["resources"] if r["name"] == "shared-postgres-image")
    image["urn"] = image["urn"].replace("shared-postgres-image", "shared-*-image")
    image["name"] = "shared-*-image"
    with pytest.raises(Refused, match="glob"):
        adopt.prepare(Plan(data, "plan.json"), Pulumi(["pulumi"], "pulumi"), False)


# --- quoting and refusals --------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["x;touch /tmp/pwned", "-rf", "a b", "$(id)", "`id`", "", "a/b", "a\nb", "x" * 129, "'q'"],
)
def test_hostile_names_are_refused(hostile: str) -> None:
    with pytest.raises(Refused):
        name(hostile, "container")


def test_the_names_hemma_uses_pass_and_reach_the_shell_quoted_once() -> None:
    for ok in ("huleedu_user", "skriptoteket-web", "infrastructure_postgres_data", "a.b"):
        assert name(ok, "x") == ok
    hemma = Hemma("ops@hemma.test", 2222, "/snap/bin/docker")
    line = hemma.psql_line("shared-postgres", "huleedu_content", "--single-transaction")
    assert shlex.split(line)[:4] == ["/snap/bin/docker", "exec", "-i", "shared-postgres"]
    assert shlex.split(line)[-2:] == ["-d", "huleedu_content"]
    assert hemma.argv("true") == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2222",
        "ops@hemma.test", "true",
    ]  # fmt: skip


@pytest.fixture
def no_ssh(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Fails the test if anything is run: a refusal must come before the first command."""
    ran: list[list[str]] = []

    def refuse(argv: list[str], stdin: str | None, timeout: float) -> Answer:
        ran.append(list(argv))
        raise AssertionError(f"ran {argv}")

    monkeypatch.setattr(adopt_shell, "run", refuse)
    return ran


@pytest.mark.parametrize(
    ("kind", "field", "hostile"),
    [
        ("docker:index/container:Container", "name", "web;curl evil|sh"),
        ("docker:index/volume:Volume", "name", "../../etc"),
        ("postgresql:index/database:Database", "name", 'db"; DROP DATABASE x; --'),
        ("postgresql:index/role:Role", "name", "$(reboot)"),
        ("postgresql:index/database:Database", "owner", "owner with space"),
    ],
)
def test_a_plan_with_a_hostile_name_is_refused_before_anything_runs(
    plan_json: dict[str, Any],
    tmp_path: Path,
    no_ssh: list[list[str]],
    kind: str,
    field: str,
    hostile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = copy.deepcopy(plan_json)
    next(r for r in data["resources"] if r["type"] == kind)["inputs"][field] = hostile
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    for step in (["swap"], ["survey"], ["ownership", "--apply"], ["prepare"]):
        assert adopt.main([*step, "--plan", str(path), "--ssh", "ops@hemma.test"]) == 2
        assert "refused" in capsys.readouterr().err
    assert no_ssh == []


@pytest.mark.parametrize(
    "argv",
    [
        ["rollback", "--ssh", "-oProxyCommand=touch /tmp/pwned"],
        ["rollback", "--ssh", "ops@hemma test"],
        ["finish", "--ssh-port", "99999"],
        ["finish", "--ssh-port", "22;id"],
        ["rollback", "--docker", "docker; id"],
        ["admin-password", "--postgres", "pg;id", "--pulumi", "true"],
    ],
)
def test_hostile_options_are_refused_before_anything_runs(
    argv: list[str], no_ssh: list[list[str]]
) -> None:
    assert adopt.main(argv) == 2
    assert no_ssh == []


def test_a_record_with_a_hostile_policy_or_name_is_refused() -> None:
    container: dict[str, Any] = {
        "name": "nginx-proxy", "id": "ab12", "restart": "always", "running": True
    }  # fmt: skip
    good: dict[str, Any] = {
        "version": 1, "state": "swapped", "postgres": "shared-postgres", "roles": ["postgres"],
        "containers": [container],
    }  # fmt: skip
    assert _from_json(good).containers[0].restart == "always"
    for key, value in (("restart", "always; reboot"), ("restart", "no:3"), ("name", "x y")):
        bad = copy.deepcopy(good)
        bad["containers"][0][key] = value
        with pytest.raises(Refused):
            _from_json(bad)
    assert _from_json({**good, "containers": [{**container, "restart": "on-failure:5"}]})
    hostile: list[tuple[str, Any]] = [("state", "done; rm -rf"), ("new", ["grafana", "$(id)"])]
    for field_, value_ in hostile:
        with pytest.raises(Refused):
            _from_json({**good, field_: value_})
    assert _from_json({**good, "new": ["grafana"]}).new == ["grafana"]


# --- the old passwords in the old containers' env ---------------------------------------


def test_logins_are_read_from_database_urls_and_user_password_pairs_only() -> None:
    env = [
        "DATABASE_URL=postgresql+asyncpg://skriptoteket:it%27s%20a%20%5C%20secret@shared-postgres:5432/x",
        "OTHER_URL=postgresql://skriptoteket:elsewhere@db:5432/x",
        "HULEEDU_DB_USER=huleedu_user",
        "HULEEDU_DB_PASSWORD=hand made",
        "SMTP_USERNAME=huleedu_user",
        "SMTP_PASSWORD=mail",
        "PGUSER=reporter",
        "PGPASSWORD=report",
    ]
    found = env_logins("web", env, {"shared-postgres"})
    assert [(x.role, x.password) for x in found] == [
        ("skriptoteket", "it's a \\ secret"),
        ("huleedu_user", "hand made"),
        ("reporter", "report"),
    ]
    assert found[0].source == "web: DATABASE_URL"
    server = env_logins(
        "shared-postgres", ["POSTGRES_PASSWORD=old"], set(), default_user="postgres"
    )
    assert [(x.role, x.password) for x in server] == [("postgres", "old")]


def test_conflicting_and_missing_passwords_are_reported_not_guessed() -> None:
    logins = [
        Login("a", "one", "x: URL"),
        Login("a", "two", "y: URL"),
        Login("b", "same", "x: URL"),
        Login("b", "same", "y: PAIR"),
    ]
    result = old_passwords(["a", "b", "c"], logins)
    assert set(result.found) == {"b"}
    assert result.conflicting == {"a": ["x: URL", "y: URL"]}
    assert result.missing == ["c"]


# --- the survey's commands ----------------------------------------------------------------


def container_line(
    name_: str, restart: str, mounts: list[tuple[str, str, str]], project: str = ""
) -> str:
    labels = {"com.docker.compose.project": project} if project else None
    return json.dumps({
        "name": f"/{name_}", "id": name_ + "0" * 12, "image": "x", "state": "running",
        "running": True, "restart": {"Name": restart, "MaximumRetryCount": 0}, "labels": labels,
        "mounts": [{"Type": t, "Name": n if t == "volume" else "", "Source": f"/src/{n}",
                    "Destination": d} for t, n, d in mounts],
    })  # fmt: skip


def hand_made() -> Observed:
    def volume(n: str, project: str = "", key: str = "") -> str:
        labels = {"com.docker.compose.project": project, "com.docker.compose.volume": key}
        return json.dumps({"name": n, "labels": labels if project else None})

    text = "\n".join([
        "#containers",
        container_line("shared-postgres", "always",
                       [("volume", "infrastructure_postgres_data", "/var/lib/postgresql/data")],
                       "infrastructure"),
        container_line("nginx-proxy", "always",
                       [("volume", "infrastructure_certs", "/etc/nginx/certs"),
                        ("bind", "html", "/usr/share/nginx/html")]),
        container_line("adminer", "always", []),
        "#volumes",
        volume("infrastructure_postgres_data", "infrastructure", "postgres_data"),
        volume("infrastructure_certs", "infrastructure", "certs"),
        volume("skriptoteket_artifacts", "skriptoteket", "artifacts"),
        volume("grafana-data"),
        volume("old_prometheus_data", "old", "prometheus_data"),
        volume("other_prometheus_data", "other", "prometheus_data"),
        "#networks",
        json.dumps({"name": "hule-network", "id": "f" * 64, "labels": None}),
    ])  # fmt: skip
    observed = parse_docker(text)
    observed.catalog = Catalog(
        160004,
        {
            "postgres": "postgres",
            "skriptoteket": "postgres",
            "huleedu_content": "postgres",
            "x": "y",
        },
        {"postgres": True, "skriptoteket": False, "huleedu_user": True},
    )
    return observed


@pytest.mark.parametrize(
    ("restart", "running", "refused"),
    [("always", False, True), ("unless-stopped", False, True), ("no", True, True),
     ("no", False, False)],
)  # fmt: skip
def test_another_container_on_the_postgres_data_that_could_start_is_named(
    restart: str, running: bool, refused: bool
) -> None:
    data = [("volume", "infrastructure_postgres_data", "/var/lib/postgresql/data")]
    text = "\n".join([
        "#containers",
        container_line("shared-postgres", "always", data),
        container_line("postgres-old", restart, data).replace(
            '"running": true', f'"running": {json.dumps(running)}'
        ),
        container_line("nginx-proxy", "always", [("volume", "certs", "/etc/nginx/certs")]),
    ])  # fmt: skip
    observed = parse_docker(text)
    server = observed.container("shared-postgres")
    assert server is not None
    named = _others_on_the_data(observed.containers, server)
    assert [n.split(" ")[0] for n in named] == (["postgres-old"] if refused else [])


def test_the_survey_prints_the_config_commands_in_an_order_the_config_takes(
    plan_json: dict[str, Any],
) -> None:
    report = survey(Plan(plan_json, "plan.json"), hand_made(), "hemma")
    text = report.text()
    pairs = [
        ("proxy.certsVolume", "infrastructure_certs"),
        ('import["volume/infrastructure_certs"]', "infrastructure_certs"),
        ("postgres.dataVolume", "infrastructure_postgres_data"),
        ('import["volume/infrastructure_postgres_data"]', "infrastructure_postgres_data"),
        ('volumeNames["skriptoteket-artifacts"]', "skriptoteket_artifacts"),
        ('import["volume/skriptoteket_artifacts"]', "skriptoteket_artifacts"),
        ('import["volume/grafana-data"]', "grafana-data"),
        ('import["network/hule-network"]', "f" * 64),
        ('import["database/huleedu_content"]', "huleedu_content"),
        ('import["database/skriptoteket"]', "skriptoteket"),
        ('import["role/huleedu_user"]', "huleedu_user"),
        ('import["role/skriptoteket"]', "skriptoteket"),
    ]
    lines = [line for line in text.splitlines() if line.startswith("scripts/pulumi")]
    assert sorted(lines) == sorted(shlex.join([*SET, path, value]) for path, value in pairs)
    for key, volume in pairs[0:6:2]:
        name_at = lines.index(shlex.join([*SET, key, volume]))
        assert name_at + 1 == lines.index(shlex.join([*SET, f'import["volume/{volume}"]', volume]))
    assert shlex.join([*SET, *pairs[1]]) == (
        "scripts/pulumi config set --path 'import[\"volume/infrastructure_certs\"]' "
        "infrastructure_certs"
    )
    assert "AMBIGUOUS prometheus-data: Hemma has old_prometheus_data, other_prometheus_data" in text
    assert "nginx-proxy keeps /usr/share/nginx/html in a bind mount" in text
    assert "WARNING role huleedu_user is a superuser" in text
    assert "databases left alone: x" in text
    assert "On Hemma, not declared (left alone): adminer" in text

    # What it prints is config the program takes, and it adopts what it names.
    config = apply_commands(site_config(), printed_commands(text))
    program = run_program(config)
    assert program.container("shared-postgres").inputs["volumes"][0]["volumeName"] == (
        "infrastructure_postgres_data"
    )
    imported = {d.inputs.get("name"): d.import_id for d in program.declared if d.import_id}
    assert imported["skriptoteket_artifacts"] == "skriptoteket_artifacts"
    assert imported["hule-network"] == "f" * 64


def test_a_second_survey_shows_what_is_set_already(plan_json: dict[str, Any]) -> None:
    data = copy.deepcopy(plan_json)
    data["config"]["import"] = json.dumps({"network/hule-network": "f" * 64})
    text = survey(Plan(data, "plan.json"), hand_made(), "hemma").text()
    assert (
        "# already set: scripts/pulumi config set --path 'import[\"network/hule-network\"]'" in text
    )
    assert not any("network/" in c[4] for c in printed_commands(text))


def test_pulumi_paths_are_read_as_the_cli_reads_them() -> None:
    assert parse_path('import["network/hule-network"]') == ["import", "network/hule-network"]
    assert parse_path("volumeNames.skriptoteket-artifacts") == [
        "volumeNames",
        "skriptoteket-artifacts",
    ]
    assert parse_path('a["b.c"].d') == ["a", "b.c", "d"]


# --- the wrapper -----------------------------------------------------------------------------


def test_scripts_adopt_passes_shellcheck_and_reads_paths_from_where_it_was_started(
    plan_json: dict[str, Any], tmp_path: Path
) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    wrapper = ROOT / "scripts" / "adopt"
    done = subprocess.run([shellcheck, str(wrapper)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert os.access(wrapper, os.X_OK)
    (tmp_path / "mine.json").write_text(json.dumps(plan_with(plan_json, False)))
    done = subprocess.run(
        [str(wrapper), "prepare", "--plan", "mine.json"],
        cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "scripts/pulumi up \\"


def closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


@pytest.mark.parametrize("step", ["survey", "rollback", "finish", "ownership", "swap"])
def test_an_unreachable_hemma_is_said_first_with_its_own_exit_status(
    step: str, plan_json: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real ssh client against a port nobody listens on: exit 3, not 1 ("a command
    on Hemma failed"), and the reason, not a fragment of the command."""
    port = closed_port()
    args = [step, *([] if step == "survey" else ["--dry-run"])]
    args += ["--ssh", "127.0.0.1", "--ssh-port", str(port)]
    if step in {"survey", "ownership", "swap"}:
        (tmp_path / "plan.json").write_text(json.dumps(plan_json))
        args += ["--plan", str(tmp_path / "plan.json")]
    assert adopt.main(args) == adopt.UNREACHABLE == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"adopt {step}: cannot reach 127.0.0.1 over ssh: ssh: connect to host 127.0.0.1 "
        f"port {port}: Connection refused; nothing was run"
    )


def test_a_failed_command_after_the_first_says_its_cause_before_its_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([Answer(0, "", ""), Answer(255, "", "Connection closed by 10.0.0.2")])
    monkeypatch.setattr(adopt_shell, "run", lambda argv, stdin, timeout: next(answers))
    hemma = Hemma("hemma")
    hemma.must("true")
    with pytest.raises(adopt_shell.Failed) as failed:
        hemma.must("sh -c " + "x" * 300)
    assert str(failed.value).startswith("on hemma: Connection closed by 10.0.0.2 (from: sh -c")


def test_ssh_s_own_failure_on_the_first_command_is_unreachable_not_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(adopt_shell, "run", lambda argv, stdin, timeout: Answer(255, "", "no"))
    with pytest.raises(adopt_shell.Unreachable):
        Hemma("hemma").run("docker ps")
    monkeypatch.setattr(adopt_shell, "run", lambda argv, stdin, timeout: Answer(1, "", "no"))
    with pytest.raises(adopt_shell.Failed):
        Hemma("hemma").must("docker ps")


def test_a_name_of_the_longest_length_passes_and_one_longer_is_refused() -> None:
    assert name("a" * adopt_shell.MAX_NAME, "container") == "a" * adopt_shell.MAX_NAME
    with pytest.raises(Refused):
        name("a" * (adopt_shell.MAX_NAME + 1), "container")


def test_hemma_s_default_port_leaves_the_port_to_the_ssh_config() -> None:
    """``Host hemma`` in ~/.ssh/config may name another port: no ``-p`` unless asked."""
    assert "-p" not in Hemma("hemma").argv("true")


def test_a_long_command_is_shortened_to_its_first_159_characters_and_an_ellipsis() -> None:
    assert adopt_shell.shorten("x" * 160) == "x" * 160
    assert adopt_shell.shorten("x" * 161) == "x" * 159 + "…"


def test_each_step_line_is_printed_before_what_the_step_runs() -> None:
    """The operator reads what is about to happen before its output: the step line is
    flushed even when stdout is a pipe (a log, `| tee`)."""
    done = subprocess.run(
        [PYTHON, "-c", "import subprocess\nfrom ops.adopt.shell import step\n"
         "step('stop the apps')\nsubprocess.run(['echo', 'stopped'])"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )  # fmt: skip
    assert done.stdout == "==> stop the apps\nstopped\n"


def test_shared_postgres_is_waited_for_until_it_answers_each_try_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes = iter([2, 2, 0])
    tries: list[float | None] = []
    slept: list[float] = []

    def answer(
        self: Hemma, remote: str, stdin: str | None = None, *, timeout: float | None = None
    ) -> Answer:
        tries.append(timeout)
        return Answer(next(codes), "", "")

    monkeypatch.setattr(Hemma, "run", answer)
    monkeypatch.setattr("ops.adopt.shell.time.sleep", slept.append)
    adopt_shell.wait_ready(Hemma("hemma"), "shared-postgres")
    assert tries == [30, 30, 30] and slept == [1, 1]
    monkeypatch.setattr(Hemma, "run", lambda *a, **k: Answer(2, "", "no response"))
    with pytest.raises(
        adopt_shell.Failed, match="shared-postgres did not accept connections in 0 s"
    ):
        adopt_shell.wait_ready(Hemma("hemma"), "shared-postgres", seconds=0)
