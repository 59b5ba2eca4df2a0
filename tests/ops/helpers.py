"""Stand-ins, sample outputs and a table reader shared by the ops tests."""

from __future__ import annotations

import copy
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ops import drift

ROOT = Path(__file__).resolve().parents[2]
TARGET = "ops@hemma.test"

GOLDEN = ROOT / "tests" / "golden"
"""The stack's real outputs, one file per configuration (``python -m tests.golden``)."""
SCHEMA = ROOT / "components" / "outputs.schema.json"
TUNNELS = ("huleedu_essay_embed_offload", "huleedu_language_tool_service")


def golden(name: str = "default") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / f"outputs-{name}.json").read_text())
    return loaded


def golden_on_test() -> dict[str, Any]:
    """The default configuration's real outputs whole, with Hemma's user@host a name
    under .test, so a stray real ssh can reach nothing."""
    data = golden()
    real = data["sshTarget"]
    data["sshTarget"] = data["hosts"]["hemma"]["sshTarget"] = TARGET
    data["postgresTunnel"] = data["postgresTunnel"].replace(real, TARGET)
    for entry in data["sshTunnels"].values():
        entry["command"] = entry["command"].replace(real, TARGET)
    return data


def _sample() -> dict[str, Any]:
    """The default configuration's real outputs, cut down to what the tests build on.

    Only values change: every key stays, so the sample keeps the real shape
    (tests/ops/test_sample.py holds it to components/outputs.schema.json). The
    target is a name under .test, so a stray real ssh can reach nothing.
    """
    data = golden_on_test()
    data["sshTunnels"] = {
        name: entry for name, entry in data["sshTunnels"].items() if name in TUNNELS
    }
    # Each test adds the checks it means to run.
    data["healthChecks"] = {"public": {}, "internal": {}}
    # Backups as the stack exports them when they are off.
    data["backups"].update(enabled=False, repository=None, databases=[], volumes={})
    return data


SAMPLE: dict[str, Any] = _sample()

# A second machine, as the stack exports one once something is placed on it.
GPU = "gpu"
GPU_TARGET = "ops@gpu.test"
GPU_PORT = 2222
ON_GPU = TUNNELS
"""The containers two_hosts() moves to the gpu machine: each has an internal check
and a tunnel."""


def two_hosts(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Outputs with a ``gpu`` machine beside hemma (another user@host, another ssh
    port), and ON_GPU placed on it: in placement, healthChecks.internal and
    sshTunnels, whose commands name the gpu's target and port, as the stack writes
    them (components/outputs.py). Default: the whole default outputs (every internal
    check), with no public check."""
    data = copy.deepcopy(data) if data is not None else golden_on_test()
    data["healthChecks"]["public"] = {}
    data["hosts"][GPU] = {
        **data["hosts"]["hemma"],
        "sshTarget": GPU_TARGET,
        "sshPort": GPU_PORT,
        "dockerHost": f"ssh://{GPU_TARGET}:{GPU_PORT}",
    }
    for name in ON_GPU:
        data["placement"][name] = GPU
        if name in data["healthChecks"]["internal"]:
            data["healthChecks"]["internal"][name]["host"] = GPU
        if name in data["sshTunnels"]:
            entry = data["sshTunnels"][name]
            forward = f"{entry['localPort']}:{entry['remote']}"
            entry.update(host=GPU, command=f"ssh -N -p {GPU_PORT} -L {forward} {GPU_TARGET}")
    return data


def schema_2(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as outputs of schemaVersion 2 were: no hosts, no placement, and no
    entry says which machine it runs on."""
    old = copy.deepcopy(data)
    old["schemaVersion"] = 2
    del old["hosts"], old["placement"]
    for key in ("sshTunnels", "hostUnits"):
        for entry in old[key].values():
            entry.pop("host", None)
    for entry in old["healthChecks"]["internal"].values():
        entry.pop("host", None)
    return old


# backups.metricsDirectory in the golden outputs, and the doctor's rows for it, in order.
METRICS = "/var/snap/docker/common/hemma/metrics"
BACKUPS = ["backup:last", "backup:drill", "backup:check"]

# Records every call as one JSON line; "exec" runs the remote command with sh as
# sshd would, "sleep" never answers a command (the first login and the master's
# -O calls still answer), anything else exits with FAKE_SSH_EXIT. FAKE_SSH_COMMAND_EXIT
# is the status of commands only, after a first login that worked. With
# FAKE_SSH_ONLY_TARGET, those two statuses are for calls to that target only.
FAKE_SSH = """#!{python}
import json, os, stat, subprocess, sys, time

WITH_VALUE = set("oplLiFRDJSOW")
args = sys.argv[1:]
i = 0
while i < len(args) and args[i].startswith("-"):
    i += 2 if len(args[i]) == 2 and args[i][1] in WITH_VALUE else 1
remote = " ".join(args[i + 1 :])
try:
    fd0, null = os.fstat(0), os.stat(os.devnull)
    devnull = stat.S_ISCHR(fd0.st_mode) and fd0.st_rdev == null.st_rdev
except OSError:
    devnull = False
control = "-O" in args
login = "ControlMaster=yes" in args
record = {"argv": args, "target": args[i] if i < len(args) else None,
          "remote": remote, "stdin_is_devnull": devnull, "control": control, "login": login}
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
command = not control and not login
only = os.environ.get("FAKE_SSH_ONLY_TARGET")
applies = not only or record["target"] == only
if command and applies and os.environ.get("FAKE_SSH_COMMAND_EXIT"):
    sys.exit(int(os.environ["FAKE_SSH_COMMAND_EXIT"]))
mode = os.environ.get("FAKE_SSH_MODE", "record")
if mode == "exec" and command:
    env = dict(os.environ, PATH=os.environ["FAKE_SSH_PATH"] + os.pathsep + os.environ["PATH"])
    done = subprocess.run(["sh", "-c", remote], cwd=os.environ["FAKE_SSH_CWD"], env=env)
    sys.exit(done.returncode)
if mode == "sleep" and command:
    time.sleep(60)
sys.exit(int(os.environ.get("FAKE_SSH_EXIT", "0")) if applies else 0)
"""

# docker as Hemma would run it: records its argv; containers named in
# FAKE_DOCKER_SICK fail and print FAKE_DOCKER_SAYS (to prove it gets redacted).
FAKE_DOCKER = """#!{python}
import json, os, sys

with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[2] in os.environ.get("FAKE_DOCKER_SICK", "").split(","):
    print("unhealthy: " + os.environ.get("FAKE_DOCKER_SAYS", ""), file=sys.stderr)
    sys.exit(1)
"""


# A metrics file as the host jobs leave it (components/backups/files/*.sh), written
# by a real shell: $1 directory, $2 job (file stem and metric prefix), $3 hours
# since the last success or "never", $4 whether the last run succeeded (1) or not (0).
WRITE_METRICS = r"""
set -eu
now=$(date +%s) last=0
[ "$3" = never ] || last=$((now - $3 * 3600))
(umask 022 && mkdir -p "$1")
tmp=$(mktemp "$1/.$2.prom.XXXXXX")
{
  echo "# HELP $2_last_success_timestamp_seconds When it last succeeded."
  echo "# TYPE $2_last_success_timestamp_seconds gauge"
  echo "$2_last_success_timestamp_seconds $last"
  echo "$2_last_run_timestamp_seconds $now"
  echo "$2_last_run_success $4"
  echo "$2_failures{check=\"snapshot\",note=\"a b\"} 0"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$1/$2.prom"
"""

# Every job the doctor reads, as its file stem.
JOBS = ("hemma_backup", "hemma_drill", "hemma_backup_check")


def write_metrics(directory: Path, job: str, hours_ago: int | None, success: int) -> Path:
    """``hours_ago`` None: the job has never succeeded."""
    ago = "never" if hours_ago is None else str(hours_ago)
    argv = ["sh", "-c", WRITE_METRICS, "sh", str(directory), job, ago, str(success)]
    subprocess.run(argv, check=True, timeout=30)
    return directory / f"{job}.prom"


# The drift checks' files in backups.metricsDirectory, and the doctor's rows for them.
DRIFT_FILES = ("hemma_drift_host.prom", "hemma_drift_operator.prom")
DRIFTS = ["drift:host", "drift:operator"]
HOST_KINDS = ("file", "grant", "container")
HOST_ITEMS_NAMED = 20
"""hemma-drift-check.sh names this many items of a kind, then "... and N more"."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def host_drift_metrics(
    now: float, last: float, success: int, drifted: Sequence[tuple[str, str]]
) -> str:
    """hemma_drift_host.prom as hemma-drift-check.sh writes it (its write_metrics):
    ``drifted`` is (kind, name) pairs; a check that ran in full counts every kind,
    one that could not run only the kinds named."""
    kinds = HOST_KINDS if success else tuple(dict.fromkeys(kind for kind, _ in drifted))
    source = 'source="host"'
    lines = [
        "# HELP hemma_drift_check_last_run_timestamp_seconds When the drift check last ran.",
        "# TYPE hemma_drift_check_last_run_timestamp_seconds gauge",
        f"hemma_drift_check_last_run_timestamp_seconds{{{source}}} {now:.0f}",
        "# HELP hemma_drift_check_success Whether the last drift check could look at "
        "everything (1) or not (0).",
        "# TYPE hemma_drift_check_success gauge",
        f"hemma_drift_check_success{{{source}}} {success}",
        "# HELP hemma_drift_last_success_timestamp_seconds When a drift check last looked "
        "at everything.",
        "# TYPE hemma_drift_last_success_timestamp_seconds gauge",
        f"hemma_drift_last_success_timestamp_seconds{{{source}}} {last:.0f}",
        "# HELP hemma_drift_items What the last drift check found changed by hand, by kind.",
        "# TYPE hemma_drift_items gauge",
    ]
    of_kind = {kind: [name for k, name in drifted if k == kind] for kind in kinds}
    lines += [
        f'hemma_drift_items{{{source},kind="{kind}"}} {len(names)}'
        for kind, names in of_kind.items()
    ]
    lines += [
        "# HELP hemma_drift_item One thing the last drift check found changed by hand.",
        "# TYPE hemma_drift_item gauge",
    ]
    for kind, names in of_kind.items():
        shown = names[:HOST_ITEMS_NAMED]
        if len(names) > HOST_ITEMS_NAMED:
            shown.append(f"... and {len(names) - HOST_ITEMS_NAMED} more")
        lines += [f'hemma_drift_item{{{source},kind="{kind}",name="{_label(n)}"}} 1' for n in shown]
    return "\n".join(lines) + "\n"


def drift_metrics(
    source: str,
    hours_ago: float | None = 1,
    success: int = 1,
    drifted: Sequence[tuple[str, str]] = (),
) -> str:
    """A drift check's file: it last ran a moment ago, or ``hours_ago`` when it
    succeeded; ``hours_ago`` None: it never succeeded. The operator's is written by
    ops.drift itself (its kind is always "resource")."""
    now = time.time()
    last = 0.0 if hours_ago is None else now - hours_ago * 3600
    ran = last if success else now
    if source == "host":
        return host_drift_metrics(ran, last, success, drifted)
    assert source == "operator" and all(kind == "resource" for kind, _ in drifted)
    found = [drift.Drifted("update", name, "t", name) for _, name in drifted]
    status = (drift.DRIFT if found else drift.CLEAN) if success else drift.ERROR
    return drift.metrics(drift.Result(status, found), ran, last)


def write_drift(
    directory: Path,
    source: str,
    hours_ago: float | None = 1,
    success: int = 1,
    drifted: Sequence[tuple[str, str]] = (),
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"hemma_drift_{source}.prom"
    path.write_text(drift_metrics(source, hours_ago, success, drifted))
    return path


def write_clean_drift(directory: Path) -> None:
    """Both drift checks ran an hour ago and found nothing."""
    for source in ("host", "operator"):
        write_drift(directory, source)


def executable(path: Path, text: str) -> Path:
    path.write_text(text.replace("{python}", sys.executable, 1))
    path.chmod(0o755)
    return path


def sample(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SAMPLE)
    data.update(changes)
    return data


def remote_outputs(
    metrics_dir: str, internal: dict[str, list[str]], enabled: bool = True
) -> dict[str, Any]:
    data = sample(postgresTunnel=None)  # each test names the tunnels it checks
    data["healthChecks"]["internal"] = {
        name: {"url": f"http://{name}:8000/healthz", "probe": probe}
        for name, probe in internal.items()
    }
    if enabled:  # as the stack exports them when they are on
        data["backups"] = golden()["backups"]
    data["backups"]["metricsDirectory"] = metrics_dir
    return data


def commands_sent(log: Path) -> list[dict[str, Any]]:
    """The commands ssh was asked to run on Hemma: not the first login, not -O calls."""
    return [c for c in read_log(log) if not c["control"] and not c["login"]]


def write(tmp_path: Path, data: dict[str, Any], name: str = "outputs.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def table(stdout: str) -> dict[str, dict[str, str]]:
    """The doctor's table as name -> column -> cell, read by the header's column starts."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    columns = ["NAME", "TARGET", "STATUS", "LATENCY", "DETAIL"]
    starts = [lines[header].index(c) for c in columns]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def statuses(stdout: str) -> dict[str, str]:
    return {name: row["STATUS"] for name, row in table(stdout).items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on, below the kernel's ephemeral
    range: a port picked with ``bind(0)`` and let go can come back from the next such
    call, or be taken as the source port of any outgoing connection before the tunnel
    binds it (``ip_local_port_range`` starts at 32768)."""
    held: list[socket.socket] = []
    try:
        for candidate in random.sample(range(20000, 32000), 200):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            if len(held) == count:
                return [s.getsockname()[1] for s in held]
        raise AssertionError(f"no {count} free ports between 20000 and 32000")
    finally:
        for sock in held:
            sock.close()


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def read_log(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.update(extra)
    return env
