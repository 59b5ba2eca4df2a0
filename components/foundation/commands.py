"""Shell commands the program runs on Hemma over SSH: pure functions, every word quoted.

pulumi-command sends a command as an SSH ``exec`` request, which sshd runs
with the user's shell (``$SHELL -c``; pulumi-command v1.2.1
provider/pkg/provider/remote/commandOutputs.go). So each command is a bash
script handed to ``bash -c`` as one quoted word, whatever the login shell is,
and every value in it is quoted with ``shlex``: a config value reaches the
script as one word or not at all.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

HEALTH_TIMEOUT_SECONDS = 300


def as_command(script: str) -> str:
    """The remote command line: bash runs the script, and stdin stays free for a secret."""
    return f"bash -c {shlex.quote(script)}"


def exec_step(
    docker: str,
    container: str,
    command: Sequence[str],
    *,
    reads_stdin: bool = False,
    wait_healthy: bool = True,
    timeout: int = HEALTH_TIMEOUT_SECONDS,
) -> str:
    """Run ``command`` inside ``container`` once it runs, then wait until it is healthy.

    The container may still be starting, or restarting because it cannot serve
    before the step (a migration) has run: the step waits for it to run, not to
    be healthy.
    """
    q = shlex.quote
    exec_flags = "-i " if reads_stdin else ""
    lines = [
        "set -euo pipefail",
        f"docker={q(docker)}",
        f"container={q(container)}",
        "running() {",
        '  [ "$("$docker" inspect -f \'{{.State.Running}} {{.State.Restarting}}\' '
        '"$container")" = "true false" ]',
        "}",
        f"deadline=$((SECONDS + {int(timeout)}))",
        "until running; do",
        '  if [ "$SECONDS" -ge "$deadline" ]; then',
        '    echo "$container is not running" >&2',
        "    exit 1",
        "  fi",
        "  sleep 2",
        "done",
        f'"$docker" exec {exec_flags}"$container" {shlex.join(command)}',
    ]
    if wait_healthy:
        lines += [
            "health() {",
            "  \"$docker\" inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "
            '"$container"',
            "}",
            'until [ "$(health)" = healthy ]; do',
            '  if [ "$SECONDS" -ge "$deadline" ]; then',
            '    echo "$container is $(health), not healthy" >&2',
            "    exit 1",
            "  fi",
            "  sleep 2",
            "done",
        ]
    return "\n".join(lines) + "\n"
