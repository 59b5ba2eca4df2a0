"""Swap the hand-made containers out right before ``scripts/pulumi up``, and back.

swap: each declared container that Hemma runs gets restart policy ``no`` first
(a ``restart: always`` shared-postgres would otherwise come back on the next
daemon restart, and the Docker snap restarts its daemon on every refresh: two
postmasters on one data directory), is stopped with 120 s grace, apps first and
shared-postgres last, and is renamed ``NAME-pre-hemma``. Its policy is recorded
first, so a rollback can give it back. It refuses while another container that
mounts shared-postgres's data could start. On a retry after a rollback it gives
the roles the state holds their generated passwords back, between the two stops.

rollback: the new container of each name (every copy of a start-first service,
named SERVICE-DIGEST and labelled with it), and each one the up created under a
name Hemma did not have, is stopped and removed; the old one renamed back, given
its policy back and started; shared-postgres first, then the roles' old
passwords (from the old containers' env), then the apps. It records that it
started, so an interrupted one is resumed and never finished over. Running it
twice changes nothing the second time.

finish: removes the ``-pre-hemma`` containers (never a volume) and the record,
only once a new, running container holds each of their names (or, start-first,
runs as that service).
"""

from __future__ import annotations

from collections.abc import Callable

from ops.adopt import record as records
from ops.adopt.compare import compare
from ops.adopt.observe import SUFFIX, Running, containers_by_id, observe
from ops.adopt.passwords import export_password, export_role_passwords
from ops.adopt.plan import Plan
from ops.adopt.postgres import (
    ADMIN,
    Pulumi,
    admin_password_accepted,
    restore_passwords,
    set_passwords,
    stack_export,
)
from ops.adopt.record import ROLLED_BACK, ROLLING_BACK, SWAPPED, SWAPPING, Kept, Record
from ops.adopt.shell import Failed, Hemma, Refused, name, say, step, wait_ready, warn

STOP_GRACE = "120"
STOP_TIMEOUT = 900.0


def _names(kept: list[Kept]) -> str:
    return ", ".join(k.name for k in kept) or "(none)"


def _stop(hemma: Hemma, batch: list[Kept]) -> None:
    if batch:
        ids = [k.id for k in batch]
        hemma.must(hemma.docker_line("stop", "-t", STOP_GRACE, *ids), timeout=STOP_TIMEOUT)


def _others_on_the_data(observed_containers: list[Running], server: Running) -> list[str]:
    """Containers besides shared-postgres that mount its data volume and could start:
    running, or with a restart policy a daemon restart acts on."""
    data = {m.name for m in server.mounts if m.type == "volume" and m.name}
    return [
        f"{c.name} (restart {c.restart}, {'running' if c.running else 'stopped'})"
        for c in observed_containers
        if c.id != server.id
        and any(m.type == "volume" and m.name in data for m in c.mounts)
        and (c.running or c.restart != "no")
    ]


def _fresh_record(hemma: Hemma, plan: Plan) -> Record:
    postgres = plan.postgres_container
    observed = observe(hemma, postgres)
    here = {c.name: c for c in observed.containers}
    declared = [c.name for c in plan.containers()]
    clash = [n + SUFFIX for n in declared if n in here and n + SUFFIX in here]
    if clash:
        raise Refused(f"{', '.join(clash)} exist already (an earlier swap?): remove them first")
    stops = compare(plan, observed).stops
    if stops:
        more = f" (and {len(stops) - 1} more)" if len(stops) > 1 else ""
        raise Refused(f"{stops[0]}{more}; `scripts/adopt survey` lists them all")
    if postgres in here:
        others = _others_on_the_data(observed.containers, here[postgres])
        if others:
            raise Refused(
                f"{', '.join(others)} mount {postgres}'s data volume and could start beside "
                "the new server (two postmasters, one data directory): stop them and "
                "`docker update --restart=no` them, or remove them, first"
            )
    order = sorted((n for n in declared if n in here), key=lambda n: (n == postgres, n))
    kept = [Kept(n, here[n].id, here[n].restart, here[n].running, here[n].image) for n in order]
    existing = set(observed.catalog.roles) if observed.catalog else set()
    roles = sorted(r for r in plan.roles() if r in existing)
    new = sorted(n for n in declared if n not in here)
    return Record(SWAPPING, postgres, [*roles, ADMIN], kept, new)


def swap(hemma: Hemma, plan: Plan, pulumi: Pulumi, dry_run: bool) -> int:
    record = records.read(hemma)
    if record is not None and record.state == SWAPPED:
        raise Refused(
            f"the containers were swapped already ({record.updated}): `scripts/pulumi up`, "
            "then `scripts/adopt finish` once the new ones work; or `scripts/adopt rollback`"
        )
    if record is not None and record.state == ROLLING_BACK:
        raise Refused("a rollback did not complete: run `scripts/adopt rollback` again first")
    if record is not None and record.state == SWAPPING:
        say(f"resuming the swap recorded in {record.where} ({record.created})")
    else:
        record = _fresh_record(hemma, plan)
    kept = record.containers
    now = containers_by_id(hemma, [k.id for k in kept])
    gone = [k.name for k in kept if k.id not in now]
    if gone:
        raise Failed(f"recorded containers are gone: {', '.join(gone)}")
    server = next((k for k in kept if k.name == record.postgres), None)
    server_runs = server is not None and now[server.id].running
    export = stack_export(pulumi)
    # On a retry after a rollback the state holds the roles already, with their
    # generated passwords, and the next up does not set them again:
    # terraform-provider-postgresql's readRolePassword cannot tell a changed SCRAM
    # verifier, so even a refresh keeps the state's password. The swap sets them.
    again = {
        r: pw for r, pw in export_role_passwords(export).items() if r in record.roles and r != ADMIN
    }
    if server_runs:
        if not admin_password_accepted(hemma, record.postgres, export_password(export)):
            raise Refused(
                f"the running {record.postgres} does not take the generated admin password: "
                "the first up could not log in. Run `scripts/adopt admin-password` first"
            )
        say(f"    {record.postgres} takes the generated admin password: the up can log in")
    elif again:
        raise Refused(
            f"{record.postgres} is not running: the roles the stack holds already "
            f"({', '.join(sorted(again))}) cannot get their generated passwords back"
        )
    step(f"record in {record.where} on {hemma.target}: each container's ID and restart policy")
    for k in kept:
        say(f"    {k.name}: restart {k.restart}, {'running' if k.running else 'not running'}")
    step(f"set restart policy no on {_names(kept)} (so no daemon restart brings one back)")
    step(f"stop them with {STOP_GRACE} s grace: the apps first, {record.postgres} last")
    if again:
        step(
            "between the two, give the roles the stack holds already their generated "
            f"passwords back (SCRAM verifiers on stdin): {', '.join(sorted(again))}"
        )
    step("rename each to NAME-pre-hemma (kept for a rollback)")
    if dry_run:
        say("(dry run: nothing changed)")
        return 0
    records.write(hemma, record)
    if kept:
        hemma.must(hemma.docker_line("update", "--restart=no", *(k.id for k in kept)))
    _stop(hemma, [k for k in kept if k.name != record.postgres])
    if again:
        set_passwords(hemma, record.postgres, again)
        say(f"    verified: {', '.join(sorted(again))} take their generated passwords")
    _stop(hemma, [k for k in kept if k.name == record.postgres])
    now = containers_by_id(hemma, [k.id for k in kept])
    renames = [
        hemma.docker_line("rename", k.id, k.kept_as) for k in kept if now[k.id].name != k.kept_as
    ]
    if renames:
        hemma.must(" && ".join(renames))
    record.state = SWAPPED
    records.write(hemma, record)
    _check(hemma, kept, lambda k, c: c.name == k.kept_as and c.restart == "no" and not c.running)
    say(f"swapped {len(kept)} containers; next: scripts/pulumi up")
    return 0


def _check(hemma: Hemma, kept: list[Kept], ok: Callable[[Kept, Running], bool]) -> None:
    now = containers_by_id(hemma, [k.id for k in kept])
    wrong = [k.name for k in kept if k.id not in now or not ok(k, now[k.id])]
    if wrong:
        raise Failed(f"not as intended afterwards: {', '.join(wrong)}")


def rollback(hemma: Hemma, dry_run: bool) -> int:
    record = records.need(hemma)
    kept = record.containers
    now = containers_by_id(hemma, [k.id for k in kept])
    gone = [k.name for k in kept if k.id not in now]
    if gone:
        raise Failed(f"the old containers {', '.join(gone)} are gone: nothing to roll back to")
    observed = observe(hemma, record.postgres).containers
    old_ids = {k.id for k in kept}
    names = {*(k.name for k in kept), *record.new}
    # Every copy of a start-first service (named SERVICE-DIGEST) is new too.
    newcomers = [c for c in observed if c.declared_as in names and c.id not in old_ids]
    for c in newcomers:
        name(c.id, "container id")
    server = [k for k in kept if k.name == record.postgres]
    apps = [k for k in kept if k.name != record.postgres]
    replaced = ", ".join(c.name for c in newcomers) or "(none)"
    step(f"stop ({STOP_GRACE} s grace) and remove the new {replaced}")
    step(f"rename {_names([k for k in kept if now[k.id].name != k.name])} back")
    step(
        "give each its recorded restart policy back: "
        + ", ".join(f"{k.name} {k.restart}" for k in kept)
    )
    step(f"start {_names([k for k in server if k.running])}, put the roles' old passwords back")
    step(f"start {_names([k for k in apps if k.running])}")
    if dry_run:
        say("(dry run: nothing changed)")
        return 0
    record.state = ROLLING_BACK
    records.write(hemma, record)
    new_apps = [c.id for c in newcomers if c.name != record.postgres]
    new_server = [c.id for c in newcomers if c.name == record.postgres]
    for batch in (new_apps, new_server):
        if batch:
            hemma.must(hemma.docker_line("stop", "-t", STOP_GRACE, *batch), timeout=STOP_TIMEOUT)
            hemma.must(hemma.docker_line("rm", *batch))
    renames = [hemma.docker_line("rename", k.id, k.name) for k in kept if now[k.id].name != k.name]
    if renames:
        hemma.must(" && ".join(renames))
    policies = [hemma.docker_line("update", f"--restart={k.restart}", k.id) for k in kept]
    hemma.must(" && ".join(policies))
    left = 0
    started = [k for k in server if k.running]
    if started:
        hemma.must(hemma.docker_line("start", *(k.id for k in started)))
        wait_ready(hemma, record.postgres)
        left = restore_passwords(hemma, record, kept, dry_run=False)
    elif server:
        warn(f"{record.postgres} was not running at the swap: no password was put back")
    to_start = [k.id for k in apps if k.running]
    if to_start:
        hemma.must(hemma.docker_line("start", *to_start))
    record.state = ROLLED_BACK
    records.write(hemma, record)
    _check(
        hemma,
        kept,
        lambda k, c: c.name == k.name and c.restart == k.restart and (c.running or not k.running),
    )
    say(f"rolled back {len(kept)} containers")
    if left:
        warn(f"{left} recorded roles keep the password the up gave them (see above)")
        return 1
    return 0


def finish(hemma: Hemma, dry_run: bool) -> int:
    record = records.need(hemma)
    if record.state == SWAPPING:
        raise Refused("the swap did not complete: run `scripts/adopt swap` again, or rollback")
    if record.state == ROLLING_BACK:
        raise Refused("a rollback did not complete: run `scripts/adopt rollback` again")
    kept = record.containers
    now = containers_by_id(hemma, [k.id for k in kept])
    remove = [k for k in kept if k.id in now and now[k.id].name == k.kept_as]
    running = [k.kept_as for k in remove if now[k.id].running]
    if running:
        raise Refused(f"{', '.join(running)} run again: stop them, or roll back instead")
    serving = {c.declared_as for c in observe(hemma, record.postgres).containers if c.running}
    unreplaced = [k.kept_as for k in remove if k.name not in serving]
    if unreplaced:
        raise Refused(
            f"nothing runs in place of {', '.join(unreplaced)}: they are the way back. "
            "`scripts/pulumi up` first, or `scripts/adopt rollback`"
        )
    for k in kept:
        if k.id in now and now[k.id].name == k.name:
            say(f"    {k.name} is the old container again (rolled back): kept")
    step(
        f"remove {', '.join(k.kept_as for k in remove) or '(none)'} (docker rm: their volumes stay)"
    )
    step(f"delete the record {record.where}")
    if dry_run:
        say("(dry run: nothing changed)")
        return 0
    if remove:
        hemma.must(hemma.docker_line("rm", *(k.id for k in remove)))
    records.delete(hemma)
    say("finished: the hand-made containers are gone, their data lives on in the volumes")
    return 0
