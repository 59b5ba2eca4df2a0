"""The doctor's drift checks, against the files the two drift checks leave in the
metrics directory, read through the stand-in ssh as test_doctor_backups.py reads the
backups'. The operator's file is written by ops.drift itself (and, where a failed
check must keep the last success, pushed by its own push script); the host's as
hemma-drift-check.sh writes it (tests/ops/helpers.py host_drift_metrics), and once by
that script itself.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ops import doctor, drift
from tests.ops.conftest import FakeSsh
from tests.ops.helpers import (
    DRIFT_FILES,
    DRIFTS,
    ROOT,
    commands_sent,
    read_log,
    remote_outputs,
    table,
    write,
    write_clean_drift,
    write_drift,
)

AGO = "last good check 1.0 h ago"
CLEAN = ("ok", f"no drift; {AGO}")


def run(
    capsys: pytest.CaptureFixture[str], fake: FakeSsh, path: Path, *args: str
) -> tuple[int, str, str]:
    base = ["--outputs", str(path), "--ssh-command", str(fake.path), "--retries", "0"]
    code = doctor.main([*base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def cells(out: str) -> dict[str, tuple[str, str]]:
    return {name: (row["STATUS"], row["DETAIL"]) for name, row in table(out).items()}


@pytest.fixture
def metrics(fake_ssh: FakeSsh, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the drift checks write, on the stand-in Hemma, whose ssh runs what it is sent."""
    monkeypatch.setenv("FAKE_SSH_MODE", "exec")
    path = fake_ssh.cwd / "metrics"
    path.mkdir()
    return path


def outputs_data(metrics: Path, stale: Any = None) -> dict[str, Any]:
    """Backups on, one internal check: what ``--only drift`` must leave alone. ``stale``
    is the outputs' ``drift``; None: outputs from before it was exported."""
    data = remote_outputs(str(metrics), {"web": ["true"]})
    data["sshTunnels"] = {}
    data.pop("drift", None)
    if stale is not None:
        data["drift"] = stale
    return data


def outputs_for(tmp_path: Path, metrics: Path, stale: Any = None) -> Path:
    return write(tmp_path, outputs_data(metrics, stale))


def reads(metrics: Path, *files: str) -> list[str]:
    return sorted(f"date +%s; {shlex.join(['base64', str(metrics / file)])}" for file in files)


def test_clean_checks_are_ok_and_the_run_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, metrics: Path
) -> None:
    write_clean_drift(metrics)
    code, out, err = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", "drift")
    assert cells(out) == {"drift:host": CLEAN, "drift:operator": CLEAN}
    rows = table(out)
    for name, file in zip(DRIFTS, DRIFT_FILES, strict=True):
        # The table cuts a long cell (this tmp path) to 90 characters.
        assert f"{metrics}/{file}".startswith(rows[name]["TARGET"].rstrip("…"))
    assert (code, err) == (0, "")
    assert "2 ok, 0 failed, 0 skipped, 0 off" in out


HOST_FIVE = [("file", "/a"), ("file", "/b"), ("grant", "g"), ("container", "c"), ("container", "d")]


@pytest.mark.parametrize(
    ("source", "drifted", "detail"),
    [
        ("host", [("file", "/etc/a"), ("container", "c1")], "2 drifted: file /etc/a, container c1"),
        ("host", HOST_FIVE, "5 drifted: file /a, file /b, grant g and 2 more"),
        # Past the 20 the writer names, it counts the rest.
        ("host", [("file", f"/f{i}") for i in range(23)], "23 drifted: file /f0, file /f1, "
         "file /f2 and 20 more"),
        ("operator", [("resource", "web")], "1 drifted: resource web"),
        ("operator", [("resource", f"r{i}") for i in range(25)], "25 drifted: resource r0, "
         "resource r1, resource r2 and 22 more"),
    ],
    ids=["host-two", "host-five", "host-past-twenty", "operator-one", "operator-past-twenty"],
)  # fmt: skip
def test_what_drifted_is_named_and_the_rest_counted(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    source: str,
    drifted: list[tuple[str, str]],
    detail: str,
) -> None:
    write_clean_drift(metrics)
    write_drift(metrics, source, drifted=drifted)
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", "drift")
    other = "drift:operator" if source == "host" else "drift:host"
    assert cells(out) == {f"drift:{source}": ("FAIL", f"{detail}; {AGO}"), other: CLEAN}
    assert code == 1


def push(metrics: Path, text: str) -> None:
    """The operator's metrics onto Hemma by ops.drift's own push script (sudo aside)."""
    argv = ["sh", "-c", drift.PUSH_SCRIPT, "push", str(metrics)]
    subprocess.run(argv, input=text, text=True, check=True, timeout=30)


def test_a_check_that_could_not_run_fails_and_keeps_the_last_good_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, metrics: Path
) -> None:
    write_drift(metrics, "host", hours_ago=5, success=0)
    # The operator's check succeeded 50 h ago, then failed now: Hemma keeps the old
    # success. The failure is said first, though the success is older than 36 h.
    now = time.time()
    push(metrics, drift.metrics(drift.Result(drift.CLEAN, []), now - 50 * 3600))
    push(metrics, drift.metrics(drift.Result(drift.ERROR, [], "boom"), now))
    path = outputs_for(tmp_path, metrics)
    code, out, _ = run(capsys, fake_ssh, path, "--only", "drift")
    assert cells(out) == {
        "drift:host": ("FAIL", "the last check could not run; last good check 5.0 h ago"),
        "drift:operator": ("FAIL", "the last check could not run; last good check 2.1 days ago"),
    }
    assert code == 1

    write_drift(metrics, "host", hours_ago=None, success=0, drifted=[("file", "/etc/a")])
    code, out, _ = run(capsys, fake_ssh, path, "--only", "drift:host")
    assert cells(out) == {"drift:host": ("FAIL", "the last check could not run; never succeeded")}


@pytest.mark.parametrize(
    ("stale", "hours_ago", "expected"),
    [
        ({"staleAfterHours": 2}, 3, ("FAIL", "last good check 3.0 h ago, over 2 h")),
        ({"staleAfterHours": 2}, 1, CLEAN),
        ({"staleAfterHours": 48}, 40, ("ok", "no drift; last good check 40.0 h ago")),
        (None, 37, ("FAIL", "last good check 37.0 h ago, over 36 h")),
        (None, 35, ("ok", "no drift; last good check 35.0 h ago")),
        ({}, 37, ("FAIL", "last good check 37.0 h ago, over 36 h")),
    ],
    ids=["over-2", "under-2", "under-48", "over-default", "under-default", "no-key-default"],
)
def test_a_check_older_than_stale_after_hours_fails(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    stale: dict[str, Any] | None,
    hours_ago: int,
    expected: tuple[str, str],
) -> None:
    """``drift.staleAfterHours`` from the outputs; 36 when they have none."""
    for source in ("host", "operator"):
        write_drift(metrics, source, hours_ago=hours_ago, drifted=[])
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics, stale), "--only", "drift")
    assert cells(out) == dict.fromkeys(DRIFTS, expected)
    assert code == (0 if expected[0] == "ok" else 1)


def test_a_missing_file_says_what_sets_it_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, metrics: Path
) -> None:
    """Whole, within the table's 90 characters a cell."""
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", "drift")
    assert cells(out) == {
        "drift:host": (
            "FAIL",
            "cannot read hemma_drift_host.prom: no such file (set up by hemma-drift-check.timer)",
        ),
        "drift:operator": (
            "FAIL",
            "cannot read hemma_drift_operator.prom: no such file (set up by scripts/drift install)",
        ),
    }
    assert code == 1


def test_hostile_names_stay_in_their_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, metrics: Path
) -> None:
    """A quote, a backslash and a line end are escaped in the file; a carriage return,
    form feed, line separator and an ANSI escape are not, and still end no line. The
    table shows each name on its row, its control characters as blanks, and a secret
    of the outputs as ***."""
    data = outputs_data(metrics)
    secret = data["grafanaAdminPassword"]
    hostile = '/etc/x"\\\n\x1b[31m\r\x0c\u2028y'
    write_drift(metrics, "host", drifted=[("file", hostile), ("file", f"/srv/{secret}")])
    # Were the escaped line end a real one, the check would read as failed.
    injected = 'w"} 1\nhemma_drift_check_success 0'
    write_drift(metrics, "operator", drifted=[("resource", injected)])
    code, out, _ = run(capsys, fake_ssh, write(tmp_path, data), "--only", "drift")
    assert cells(out) == {
        "drift:host": ("FAIL", f'2 drifted: file /etc/x"\\ [31m y, file /srv/***; {AGO}'),
        "drift:operator": (
            "FAIL",
            f'1 drifted: resource w"}} 1 hemma_drift_check_success 0; {AGO}',
        ),
    }
    assert secret not in out
    assert not any(c in out for c in "\x1b\r\x0c\u2028")
    assert len(out.splitlines()) == 1 + 2 + 2, "header, two rows, a blank line, the summary"
    assert code == 1


HOST_CHECK = ROOT / "components" / "host" / "files" / "hemma-drift-check.sh"

# docker as hemma-drift-check.sh calls it: psql finds no grant (and none is declared),
# `docker ps` lists the declared container and one started by hand.
DOCKER = """#!/bin/sh
case "$1" in
  exec) cat >/dev/null ;;
  ps) case "$*" in *label=*) ;; *) printf 'web\\tweb:1\\nstray\\tbusybox\\n' ;; esac ;;
esac
"""


def manifest_line(path: str, content: bytes) -> str:
    """sha256sum's own line: a path with a backslash, line end or carriage return is
    escaped, and the line then starts with a backslash."""
    escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    line = f"{hashlib.sha256(content).hexdigest()}  {escaped}"
    return "\\" + line if escaped != path else line


def test_the_doctor_reads_what_the_host_check_writes_hostile_paths_and_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, metrics: Path
) -> None:
    """Installed files gone missing, named with a carriage return (which only the way
    back in base64 keeps inside its line), a quote, a backslash, a line end and an ANSI
    escape; and a container started by hand."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "kept").write_bytes(b"x")
    missing = ["/c\rr", '/q"', "/b\\", "/n\nl", "/e\x1b[2J"]
    manifest = tmp_path / "manifest"
    lines = [manifest_line("/etc/kept", b"x"), *(manifest_line(p, b"y") for p in missing)]
    manifest.write_bytes("".join(f"{line}\n" for line in lines).encode())
    (tmp_path / "grants").write_text("")
    (tmp_path / "containers").write_text("name web\n")
    docker = tmp_path / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    argv = ["bash", str(HOST_CHECK), "--docker", str(docker), "--postgres", "pg"]
    argv += ["--metrics", str(metrics), "--manifest", str(manifest)]
    argv += ["--grants", str(tmp_path / "grants"), "--containers", str(tmp_path / "containers")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HEMMA_ROOT": str(root)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    write_drift(metrics, "operator")
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", "drift")
    detail = '6 drifted: file /c r, file /q", file /b\\ and 3 more; last good check 0.0 h ago'
    assert cells(out) == {"drift:host": ("FAIL", detail), "drift:operator": CLEAN}
    assert code == 1


@pytest.mark.parametrize(
    ("only", "names", "files"),
    [
        (["drift"], DRIFTS, DRIFT_FILES),
        (["drift:operator"], ["drift:operator"], ["hemma_drift_operator.prom"]),
        (["drift:host", "internal"], ["internal:web", "drift:host"], ["hemma_drift_host.prom"]),
    ],
)
def test_only_selects_the_drift_checks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    only: list[str],
    names: list[str],
    files: list[str],
) -> None:
    write_clean_drift(metrics)
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", *only)
    assert list(table(out)) == names
    sent = sorted(c["remote"] for c in commands_sent(fake_ssh.log))
    drift_reads = [c for c in sent if c.startswith("date +%s; ")]
    assert drift_reads == reads(metrics, *files), "no backup file, no other drift file"
    assert len(sent) == len(names), "no other check ran"
    assert code == 0


@pytest.mark.parametrize(
    ("stale", "message"),
    [
        ({"staleAfterHours": "36"}, "outputs drift.staleAfterHours should be a positive "
         "number, not '36'"),
        ({"staleAfterHours": -1}, "outputs drift.staleAfterHours should be a positive "
         "number, not -1"),
        ({"staleAfterHours": 0}, "outputs drift.staleAfterHours should be a positive "
         "number, not 0"),
        ({"staleAfterHours": True}, "outputs drift.staleAfterHours should be a positive "
         "number, not True"),
        ({"staleAfterHours": float("inf")}, "outputs drift.staleAfterHours should be a "
         "positive number, not inf"),
        ("hourly", "outputs drift should be an object, not 'hourly'"),
    ],
    ids=["string", "negative", "zero", "bool", "infinity", "not-an-object"],
)  # fmt: skip
def test_a_bad_stale_after_hours_is_one_line_and_runs_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    stale: Any,
    message: str,
) -> None:
    write_clean_drift(metrics)
    code, out, err = run(capsys, fake_ssh, outputs_for(tmp_path, metrics, stale))
    assert (code, out) == (2, "")
    assert err == f"doctor: {message}\n"
    assert read_log(fake_ssh.log) == [], "not even a login"


HELP = "# HELP hemma_drift_items What the last drift check found changed by hand, by kind."
SUCCESS = 'hemma_drift_check_success{source="host"} 1'
STAMP = 'hemma_drift_last_success_timestamp_seconds{source="host"} {last}'
ITEMS = 'hemma_drift_items{source="host",kind="file"} 0'


def lines(*body: str) -> list[str]:
    return [SUCCESS, STAMP, HELP, *body]


# A host file line by line ({last}: an hour ago), and what the doctor says of it.
CONTENTS: dict[str, tuple[list[str], tuple[str, str]]] = {
    "comments only": (["# HELP x y", "# TYPE x gauge"], (
        "FAIL", "no hemma_drift_check_success in the file")),
    "no last success": ([SUCCESS, ITEMS], (
        "FAIL", "no hemma_drift_last_success_timestamp_seconds in the file")),
    "success NaN": ([SUCCESS.replace("} 1", "} NaN"), STAMP, ITEMS], (
        "FAIL", "hemma_drift_check_success is nan in the file")),
    "last success NaN": ([SUCCESS, STAMP.replace("{last}", "NaN"), ITEMS], (
        "FAIL", "hemma_drift_last_success_timestamp_seconds is nan in the file")),
    "no items": (lines(), ("FAIL", "no hemma_drift_items in the file")),
    "items NaN": (lines(ITEMS, ITEMS.replace("0", "NaN")), (
        "FAIL", "hemma_drift_items is nan in the file")),
    "items +Inf": (lines(ITEMS.replace("0", "+Inf")), (
        "FAIL", "hemma_drift_items is inf in the file")),
    "items negative": (lines(ITEMS.replace("0", "-1")), (
        "FAIL", "hemma_drift_items is -1 in the file")),
    "items fractional": (lines(ITEMS.replace("0", "1.5")), (
        "FAIL", "hemma_drift_items is 1.5 in the file")),
    "a junk line": (lines(ITEMS, "this is not a metric"), (
        "FAIL", "line 5 of the file is not a Prometheus sample")),
    "a value that is no number": (lines(ITEMS.replace("0", "none")), (
        "FAIL", "line 4 of the file is not a Prometheus sample")),
    "labels that are no labels": (lines(ITEMS, ITEMS.replace('"file"', '"file",junk')), (
        "FAIL", "line 5 of the file is not a Prometheus sample")),
    "an unknown escape": (lines(ITEMS, 'hemma_drift_item{kind="file",name="\\q"} 1'), (
        "FAIL", "line 5 of the file is not a Prometheus sample")),
    "an unclosed label": (lines(ITEMS, 'hemma_drift_item{kind="file",name="/a} 1'), (
        "FAIL", "line 5 of the file is not a Prometheus sample")),
    # node-exporter skips a textfile with a timestamp in it.
    "a timestamp": (lines(ITEMS + " 1700000000000"), (
        "FAIL", "line 4 of the file is not a Prometheus sample")),
    "blank lines, comments, a trailing comma": (
        ["", f"  {SUCCESS}", "  # a note", STAMP, "", ITEMS.replace('"file"', '"file",')],
        CLEAN),
    "named but counted 0": (lines(ITEMS, 'hemma_drift_item{kind="file",name="/a"} 1'), (
        "FAIL", f"1 drifted: file /a; {AGO}")),
    "counted but not named": (lines(ITEMS.replace("0", "2")), ("FAIL", f"2 drifted; {AGO}")),
    "an item at 0": (lines(ITEMS.replace("0", "1"), 'hemma_drift_item{kind="file",name="/a"} 1',
        'hemma_drift_item{kind="file",name="/b"} 0'), ("FAIL", f"1 drifted: file /a; {AGO}")),
}  # fmt: skip


@pytest.mark.parametrize("contents", list(CONTENTS))
def test_a_file_the_checks_would_not_write_fails_with_what_is_wrong(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    metrics: Path,
    contents: str,
) -> None:
    body, expected = CONTENTS[contents]
    last = f"{time.time() - 3600:.0f}"
    (metrics / "hemma_drift_host.prom").write_text("\n".join(body).replace("{last}", last) + "\n")
    code, out, _ = run(capsys, fake_ssh, outputs_for(tmp_path, metrics), "--only", "drift:host")
    assert cells(out) == {"drift:host": expected}
    assert code == (0 if expected[0] == "ok" else 1)
