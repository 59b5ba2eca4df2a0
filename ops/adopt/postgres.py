"""The adoption's steps inside shared-postgres: the admin password handed over before
the swap, the ownership of hand-made tables after the first up, and the old
passwords put back on a rollback. All SQL travels on the remote psql's stdin.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ops.adopt.observe import (
    CATALOG_SQL,
    container_envs,
    observe,
    parse_catalog,
    stored_verifier,
    stored_verifiers,
)
from ops.adopt.passwords import (
    env_logins,
    export_password,
    old_passwords,
    scram_verifier,
    verifier_matches,
)
from ops.adopt.plan import Plan
from ops.adopt.record import Kept, Record
from ops.adopt.shell import (
    PSQL_FLAGS,
    Failed,
    Hemma,
    Refused,
    name,
    quote_ident,
    quote_literal,
    run,
    say,
    sh,
    step,
    warn,
)

ADMIN = "postgres"


@dataclass(frozen=True)
class Pulumi:
    argv: list[str]
    shown: str
    """How the operator would type it (``scripts/pulumi``)."""


def stack_export(pulumi: Pulumi) -> str:
    step(f"read the stack's passwords: `{pulumi.shown} stack export --show-secrets`")
    answer = run([*pulumi.argv, "stack", "export", "--show-secrets"], None, 600)
    if answer.code != 0:
        raise Failed(f"`{pulumi.shown} stack export --show-secrets` failed: {answer.why()}")
    return answer.stdout


def generated_admin_password(pulumi: Pulumi) -> str:
    return export_password(stack_export(pulumi))


def set_passwords(hemma: Hemma, postgres: str, passwords: dict[str, str]) -> None:
    """Each role on its password, in one transaction, checked against pg_authid after.

    The SQL carries the SCRAM verifier, not the password: the server may log a
    statement (on an error, or under log_statement), and the log is
    ``docker logs``. A non-ASCII old password is sent as it is, so that the
    server's own SASLprep makes its verifier.
    """
    if not passwords:
        return
    sql = "".join(
        f"ALTER ROLE {quote_ident(role)} PASSWORD "
        f"{quote_literal(scram_verifier(password) if password.isascii() else password)};\n"
        for role, password in sorted(passwords.items())
    )
    hemma.sql(postgres, sql, "postgres", "--single-transaction")
    stored = stored_verifiers(hemma, postgres, sorted(passwords))
    for role, password in sorted(passwords.items()):
        if not verifier_matches(stored.get(role, ""), password, role):
            raise Failed(f"{role}'s stored verifier does not match the password it was given")


def admin_password_accepted(hemma: Hemma, postgres: str, password: str) -> bool:
    return verifier_matches(stored_verifier(hemma, postgres, ADMIN), password, ADMIN)


def apps_logging_in_as_admin(hemma: Hemma, postgres: str) -> list[str]:
    """``CONTAINER: KEY`` of every other running container that logs in as postgres."""
    here = [c for c in observe(hemma, postgres).containers if c.running and c.name != postgres]
    envs = container_envs(hemma, [c.id for c in here])
    return [
        login.source
        for c in here
        for login in env_logins(c.name, envs.get(c.id, []), {postgres})
        if login.role == ADMIN
    ]


def hand_over_admin_password(
    hemma: Hemma, pulumi: Pulumi, postgres: str, dry_run: bool, force: bool = False
) -> None:
    password = generated_admin_password(pulumi)
    cut_off = apps_logging_in_as_admin(hemma, postgres)
    if cut_off and not force:
        raise Refused(
            f"{', '.join(cut_off)} log in as postgres: they would lose their login now, "
            "before the outage (--force accepts that)"
        )
    for source in cut_off:
        warn(f"{source} logs in as postgres: it loses its login now (--force)")
    say("    40 letters and digits, as the program generates")
    if admin_password_accepted(hemma, postgres, password):
        say(f"    {postgres} on {hemma.target} already has it (pg_authid's verifier matches)")
        return
    step(
        f"on {hemma.target}: docker exec -i {postgres} psql -U postgres, on stdin: "
        "ALTER ROLE postgres PASSWORD '<its SCRAM verifier>';"
    )
    step("then check pg_authid's verifier of postgres against it (not trusting a login)")
    if dry_run:
        say("(dry run: nothing changed)")
        return
    set_passwords(hemma, postgres, {ADMIN: password})
    say(f"    verified: {postgres} now takes the generated admin password")


# --- ownership of what was made by hand ------------------------------------------

KINDS = {"r": "TABLE", "p": "TABLE", "S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
_OWNED_SQL = """SELECT coalesce(json_agg(json_build_object(
    'kind', o.relkind, 'schema', o.nspname, 'name', o.relname, 'owner', o.owner)
    ORDER BY o.nspname, o.relname), '[]')
FROM (
  SELECT c.relkind, n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_%'
    AND pg_get_userbyid(c.relowner) <> :'owner'
    -- an extension's own objects are the extension's business
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
    -- a serial's or identity's sequence follows its table (and cannot be altered alone)
    AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
) o;
"""


@dataclass(frozen=True)
class Owned:
    kind: str
    schema: str
    name: str
    owner: str

    def alter(self, new_owner: str) -> str:
        what = f"{quote_ident(self.schema)}.{quote_ident(self.name)}"
        return f"ALTER {self.kind} {what} OWNER TO {quote_ident(new_owner)};"


_EACH_DATABASE = (
    'd=$1; c=$2; sql=$3; shift 3; while [ "$#" -gt 1 ]; do db=$1; owner=$2; shift 2; '
    'out=$(printf "%s\\n" "$sql" | "$d" exec -i "$c" psql ' + " ".join(PSQL_FLAGS) + " "
    '-U postgres -d "$db" -v owner="$owner") || exit 1; '
    'printf "#%s\\n%s\\n" "$db" "$out"; done'
)
"""For each (database, owner): the query on psql's stdin, with the owner as the psql
variable ``:'owner'`` (quoted by psql); one ssh for them all."""


def owned_by_others(hemma: Hemma, postgres: str, owners: dict[str, str]) -> dict[str, list[Owned]]:
    """Database -> what in it is not owned by its owner."""
    pairs = [w for db, owner in owners.items() for w in (name(db, "database"), name(owner, "role"))]
    line = sh(_EACH_DATABASE, hemma.docker, name(postgres, "container"), _OWNED_SQL, *pairs)
    found: dict[str, list[str]] = {}
    current = ""
    for text in hemma.must(line).splitlines():
        if text.startswith("#"):
            current = text[1:]
            found[current] = []
        elif current:
            found[current].append(text)
    return {
        db: [
            Owned(KINDS[str(o["kind"])], str(o["schema"]), str(o["name"]), str(o["owner"]))
            for o in json.loads("\n".join(lines).strip() or "[]")
        ]
        for db, lines in found.items()
    }


def ownership(hemma: Hemma, plan: Plan, apply: bool, dry_run: bool) -> int:
    postgres = plan.postgres_container
    catalog = parse_catalog(hemma.sql(postgres, CATALOG_SQL))
    adopted = {}
    early = []
    for database, owner in sorted(plan.databases().items()):
        current = catalog.databases.get(database)
        if current is None:
            continue
        if current != owner:
            early.append(f"{database} is owned by {current}, not {owner}")
            continue
        adopted[database] = owner
    if early:
        raise Refused(
            f"{'; '.join(early)}: the up hands each database to its role first. "
            "Run `scripts/pulumi up`, then this; nothing was changed"
        )
    listed = owned_by_others(hemma, postgres, adopted) if adopted else {}
    for database, owner in adopted.items():
        found = listed.get(database, [])
        if not found:
            say(f"{database}: everything is {owner}'s")
            continue
        say(f"{database}: {len(found)} not owned by {owner}:")
        for o in found:
            say(f"    {o.kind} {o.schema}.{o.name} (owner {o.owner})")
        if not apply:
            continue
        statements = [o.alter(owner) for o in found]
        step(f"in {database}, one transaction on stdin: " + " ".join(statements))
        if dry_run:
            continue
        hemma.sql(postgres, "\n".join(statements) + "\n", database, "--single-transaction")
        left = owned_by_others(hemma, postgres, {database: owner}).get(database, [])
        if left:
            raise Failed(f"{database}: still not {owner}'s: {', '.join(o.name for o in left)}")
        say(f"    done: {database} is all {owner}'s")
    if not apply:
        say("(listed only: --apply changes the owners)")
    elif dry_run:
        say("(dry run: nothing changed)")
    return 0


# --- the old passwords, put back on a rollback -------------------------------------


def restore_passwords(hemma: Hemma, record: Record, kept: Sequence[Kept], dry_run: bool) -> int:
    """Each recorded role back on the password its old containers log in with.

    Returns how many recorded roles are left on another password.
    """
    logins = []
    envs = container_envs(hemma, [k.id for k in kept])
    for k in kept:
        default = ADMIN if k.name == record.postgres else None
        logins += env_logins(k.name, envs.get(k.id, []), {record.postgres}, default)
    passwords = old_passwords(record.roles, logins)
    for role, login in sorted(passwords.found.items()):
        step(f"set {role}'s password back to the one in {login.source} (SQL on stdin)")
    for role, sources in sorted(passwords.conflicting.items()):
        warn(f"NOT RESTORED {role}: the old containers disagree ({', '.join(sources)})")
    for role in passwords.missing:
        warn(f"NOT RESTORED {role}: no old container's env holds a password for it")
    if dry_run or not passwords.found:
        return len(passwords.conflicting) + len(passwords.missing)
    set_passwords(
        hemma, record.postgres, {role: login.password for role, login in passwords.found.items()}
    )
    for role in sorted(passwords.found):
        say(f"    verified: {role} takes its old password again")
    return len(passwords.conflicting) + len(passwords.missing)
