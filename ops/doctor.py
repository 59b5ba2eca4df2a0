"""Is Hemma healthy? Every check the stack outputs describe, in one table.

    python -m ops.doctor                      # reads `scripts/pulumi stack output`
    python -m ops.doctor --outputs out.json --only https cert
    python -m ops.doctor --resolve skriptoteket.hule.education:203.0.113.7
    python -m ops.doctor --only backup        # backup:last, backup:drill, backup:check
    python -m ops.doctor --only drift         # drift:host, drift:operator

Every check over ssh runs on the machine its entry names (``host``; hemma when the
outputs predate schemaVersion 3): hemma through the ``hemma`` alias of ~/.ssh/config
(or $HEMMA_SSH, or --ssh, and --ssh-port), any other machine at its ``hosts`` entry's
sshTarget and sshPort. Each machine gets one login for the whole run: the doctor logs
in to it once first, and when that fails it says so in one line and skips every
check over ssh on that machine, trying no other login to it. Exit status: 0 all
checks ok (or off), 1 any failed or was skipped, 2 the input could not be used.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TextIO

from ops import backups, checks, drift_checks, outputs, remote
from ops.checks import FAIL, KINDS, OFF, OK, SKIPPED, Check, Context, Outcome
from ops.outputs import BadInput

Redact = Callable[[str], str]


@dataclass(frozen=True)
class Result:
    check: Check
    outcome: Outcome
    latency_ms: float | None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="doctor",
        description="Check every public URL, certificate, container, tunnel "
        "target, the backups (last run, restore drill, repository check) and the "
        "drift checks (host, operator) that the hemma stack outputs describe.",
    )
    parser.add_argument(
        "--outputs", metavar="FILE", help="stack outputs JSON (default: ask Pulumi)"
    )
    parser.add_argument(
        "--ssh",
        metavar="TARGET",
        help="the ssh alias of Hemma (default: $HEMMA_SSH or hemma); hemma only: another "
        "machine is reached at its sshTarget in the outputs' hosts",
    )
    parser.add_argument(
        "--ssh-port",
        metavar="PORT",
        help="Hemma's ssh port (default: the alias's own); hemma only: another machine's "
        "is its sshPort in the outputs' hosts",
    )
    parser.add_argument("--ssh-command", default="ssh", help="the ssh client to run (default: ssh)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per try (15)")
    parser.add_argument("--retries", type=int, default=2, help="tries after a failure (2)")
    parser.add_argument("--backoff", type=float, default=0.5, help="first pause before a retry")
    parser.add_argument("--concurrency", type=int, default=8, help="checks at once (8)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="a kind, a name, or kind:name")
    parser.add_argument("--ca-file", metavar="PEM", help="trust these CAs instead of the system's")
    parser.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:IP[:PORT]",
        help="connect to IP (and PORT) for HOST, still sending its name (repeatable)",
    )
    parser.add_argument("--cert-warn-days", type=float, default=14.0, help="fail under (14)")
    parser.add_argument(
        "--backup-max-age",
        type=float,
        default=26.0,
        metavar="HOURS",
        help="fail backup:last when the last good backup is older (26)",
    )
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.retries < 0 or args.concurrency < 1 or args.backoff < 0:
        parser.error("--timeout and --concurrency must be positive, --retries and --backoff >= 0")
    return args


def build(data: dict[str, Any], resolve: dict[str, tuple[str, int | None]]) -> list[Check]:
    found = [
        *checks.public_checks(data, resolve),
        *checks.internal_checks(data),
        *checks.tunnel_checks(data),
        *backups.backup_checks(data),
        *drift_checks.drift_checks(data),
    ]
    return sorted(found, key=lambda c: (KINDS.index(c.kind), c.rank, c.short))


def select(found: list[Check], only: list[str] | None) -> list[Check]:
    if not only:
        return found
    chosen = [c for c in found if {c.kind, c.short, c.name} & set(only)]
    known = {c.kind for c in found} | {c.short for c in found} | {c.name for c in found}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise BadInput(f"--only {' '.join(unknown)}: no such check (kinds: {', '.join(KINDS)})")
    return chosen


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(outputs.user_path(ca_file)))
    except (OSError, ssl.SSLError) as error:
        raise BadInput(
            f"--ca-file {ca_file}: {getattr(error, 'strerror', None) or error}"
        ) from None


def attempt(check: Check, ctx: Context, retries: int, backoff: float) -> Result:
    for tries in range(retries + 1):
        start = time.monotonic()
        try:
            outcome = check.probe(ctx)
        except Exception as error:  # one broken check must not hide the others
            outcome = Outcome(FAIL, f"{type(error).__name__}: {error}")
        latency = (time.monotonic() - start) * 1000
        if outcome.status != FAIL or outcome.final or tries == retries:
            break
        time.sleep(backoff * 2**tries)
    return Result(check, outcome, None if outcome.status in (OFF, SKIPPED) else latency)


def run_all(
    chosen: list[Check],
    ctx: Context,
    args: argparse.Namespace,
    progress: Callable[[int, int], None],
) -> list[Result]:
    results: list[Result] = []
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        futures = [pool.submit(attempt, c, ctx, args.retries, args.backoff) for c in chosen]
        for done in as_completed(futures):
            results.append(done.result())
            progress(len(results), len(chosen))
    order = {c.name: i for i, c in enumerate(chosen)}
    return sorted(results, key=lambda r: order[r.check.name])


def reporter(stream: TextIO, forced: bool) -> Callable[[int, int], None]:
    tty = stream.isatty()

    def report(done: int, total: int) -> None:
        if tty:
            stream.write(f"\rchecked {done}/{total}" + ("\n" if done == total else ""))
        elif forced:
            stream.write(f"checked {done}/{total}\n")
        stream.flush()

    return report if tty or forced else (lambda done, total: None)


def table(results: list[Result], clean: Callable[[str], str]) -> str:
    rows = [["NAME", "TARGET", "STATUS", "LATENCY", "DETAIL"]]
    for r in results:
        latency = "-" if r.latency_ms is None else f"{r.latency_ms:.0f}ms"
        cells = (r.check.name, r.check.target, r.outcome.status, latency, r.outcome.detail)
        rows.append([clean(cell) for cell in cells])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def machines(chosen: list[Check]) -> list[str]:
    """The machines the chosen checks run on over ssh, hemma first."""
    found = {c.host for c in chosen if c.needs_ssh}
    return sorted(found, key=lambda host: (host != outputs.HEMMA, host))


def login(sessions: dict[str, remote.Session], timeout: float, clean: Redact) -> None:
    """One login to each machine, one after another. A machine that refuses it is
    said in one line; its checks over ssh are then skipped, and nothing logs in to
    it again (fail2ban's recidive jail bans for good)."""
    for host, session in sessions.items():
        if session.start(timeout):
            continue
        where = "" if len(sessions) == 1 else f" on {host}"
        print(
            f"doctor: cannot log in to {session.target} over ssh ({clean(session.failure or '')});"
            f" every check over ssh{where} is skipped, and no other login"
            f"{'' if len(sessions) == 1 else ' to it'} is tried",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = outputs.load(args.outputs)
        found = build(data, checks.parse_resolve(args.resolve))
        chosen = select(found, args.only)
        drift_hours = drift_checks.stale_hours(data)
        tls = tls_context(args.ca_file)
        sessions = {}
        hosts = machines(chosen)
        if hosts:
            port = outputs.ssh_port({}, args.ssh_port) if args.ssh_port is not None else 22
            hemma = (remote.target(args.ssh), port)
            reached = {host: remote.reach(data, host, hemma) for host in hosts}
            sessions = {
                host: remote.Session(args.ssh_command, target, port)
                for host, (target, port) in reached.items()
            }
    except (BadInput, remote.BadTarget) as error:
        print(f"doctor: {error}", file=sys.stderr)
        return 2
    clean = outputs.Redactor(data)
    try:
        login(sessions, min(args.timeout, remote.CONNECT_TIMEOUT) + 2, clean)
        ctx = Context(
            timeout=args.timeout,
            tls=tls,
            cert_warn_days=args.cert_warn_days,
            backup_max_age_hours=args.backup_max_age,
            sessions=sessions,
            drift_max_age_hours=drift_hours,
        )
        results = run_all(chosen, ctx, args, reporter(sys.stderr, args.progress))
    finally:
        for session in sessions.values():
            session.close()
    print(table(results, clean))
    counts = {s: sum(r.outcome.status == s for r in results) for s in (OK, FAIL, SKIPPED, OFF)}
    print(f"\n{counts[OK]} ok, {counts[FAIL]} failed, {counts[SKIPPED]} skipped, {counts[OFF]} off")
    return 1 if counts[FAIL] or counts[SKIPPED] else 0


if __name__ == "__main__":
    sys.exit(main())
