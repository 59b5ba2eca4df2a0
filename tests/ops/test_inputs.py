"""Input the tools cannot use: exit 2 with one line on stderr, and nothing half-done."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ops import doctor, outputs, tunnel
from tests.ops.conftest import FakeSsh
from tests.ops.helpers import SAMPLE, executable, read_log, sample, write

TOOLS: dict[str, Callable[[list[str] | None], int]] = {
    "doctor": doctor.main,
    "tunnel": tunnel.main,
}


def refused(capsys: pytest.CaptureFixture[str], tool: str, args: list[str]) -> tuple[int, str, str]:
    code = TOOLS[tool]([*args, "--print"] if tool == "tunnel" else args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


def broken(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "outputs.json"
    path.write_text(text)
    return ["--outputs", str(path)]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "missing file": (
        lambda tmp: ["--outputs", str(tmp / "nope.json")],
        "cannot read {tmp}/nope.json: No such file or directory",
    ),
    "invalid JSON": (
        lambda tmp: broken(tmp, '{"schemaVersion": 1,'),
        "{tmp}/outputs.json is not JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 21",
    ),
    "newer schema": (
        lambda tmp: broken(tmp, json.dumps(sample(schemaVersion=99))),
        "outputs schemaVersion 99 is newer than these tools understand (3): update this checkout",
    ),
    "no schema": (
        lambda tmp: broken(
            tmp, json.dumps({k: v for k, v in sample().items() if k != "schemaVersion"})
        ),
        "outputs have no schemaVersion: export it from the stack (scripts/pulumi up)",
    ),
    "not an object": (lambda tmp: broken(tmp, "[1, 2]"), "{tmp}/outputs.json is not a JSON object"),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_unusable_outputs_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str, case: str
) -> None:
    make, message = CASES[case]
    code, out, err = refused(capsys, tool, make(tmp_path))
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"{tool}: " + message.format(tmp=tmp_path))


def backups_on(**change: Any) -> dict[str, Any]:
    return {"backups": {**SAMPLE["backups"], "enabled": True, **change}}


NOT_PLAIN = "outputs backups.metricsDirectory should be an absolute path without spaces"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"healthChecks": {"public": {}}}, "outputs have no healthChecks.internal"),
        ({"sshTunnels": "[secret]"}, "outputs sshTunnels is hidden as a secret"),
        ({"backups": {"enabled": "yes"}}, "outputs backups.enabled should be"),
        (backups_on(metricsDirectory="-delete"), NOT_PLAIN),
        (backups_on(metricsDirectory="var/metrics"), NOT_PLAIN),
        (backups_on(metricsDirectory="/srv/$(reboot)"), NOT_PLAIN),
        (backups_on(metricsDirectory="/srv/a b"), NOT_PLAIN),
        (backups_on(metricsDirectory="/srv/x;id"), NOT_PLAIN),
        (backups_on(metricsDirectory="/srv/x\n/y"), NOT_PLAIN),
        (backups_on(metricsDirectory="/srv/\u00e5"), NOT_PLAIN),
        (backups_on(metricsDirectory=7), "outputs backups.metricsDirectory should be a string"),
        (
            {"backups": {"enabled": True}},
            "outputs have no backups.metricsDirectory",
        ),
        (
            {"healthChecks": {"public": {}, "internal": {"web": "http://web:8000/healthz"}}},
            "outputs healthChecks.internal.web should be an object with url and probe",
        ),
        (
            {"sshTunnels": {"t": {"localPort": 1, "remote": "nowhere"}}},
            "outputs sshTunnels.t.remote should be HOST:PORT",
        ),
    ],
)
def test_doctor_refuses_outputs_it_cannot_check_and_runs_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    change: dict[str, Any],
    message: str,
) -> None:
    data = sample(**change)
    code = doctor.main(
        ["--outputs", str(write(tmp_path, data)), "--ssh-command", str(fake_ssh.path)]
    )
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"doctor: {message}")
    assert read_log(fake_ssh.log) == []


@pytest.mark.parametrize(
    ("tunnels", "message"),
    [
        ({"a.b": {"remote": "127.0.0.1:1"}}, "outputs have no sshTunnels.a.b.localPort"),
        ({"t": {"localPort": 70000, "remote": "127.0.0.1:1"}}, "outputs sshTunnels.t.localPort"),
        ({"t": {"localPort": "1", "remote": "127.0.0.1:1"}}, "outputs sshTunnels.t.localPort"),
        ({"t": {"localPort": 1, "remote": "127.0.0.1"}}, "outputs sshTunnels.t.remote should"),
        ({"t": ["ssh"]}, "outputs sshTunnels.t should be an object"),
    ],
)
def test_tunnel_refuses_entries_it_cannot_open_and_starts_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tunnels: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh to start, should it try
    code = tunnel.main(["--outputs", str(write(tmp_path, sample(sshTunnels=tunnels)))])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"tunnel: {message}")


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("how", ["--ssh", "HEMMA_SSH"])
@pytest.mark.parametrize("hostile", ["-oProxyCommand=touch pwned", "ops@hemma -p 2", "a\tb"])
def test_an_ssh_target_ssh_would_read_as_an_option_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_ssh: FakeSsh,
    tool: str,
    how: str,
    hostile: str,
) -> None:
    args = ["--outputs", str(write(tmp_path, sample()))]
    if how == "--ssh":
        args.append(f"--ssh={hostile}")
    else:
        monkeypatch.setenv("HEMMA_SSH", hostile)
    if tool == "doctor":
        args += ["--ssh-command", str(fake_ssh.path)]
    code, out, err = refused(capsys, tool, args)
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"{tool}: refusing ssh target")
    assert read_log(fake_ssh.log) == []


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("port", ["0", "65536", "ssh", "-1", "22 ", "\u00b2", ""])
def test_a_bad_ssh_port_option_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str, port: str
) -> None:
    args = ["--outputs", str(write(tmp_path, sample())), f"--ssh-port={port}"]
    code, out, err = refused(capsys, tool, args)
    assert (code, out) == (2, "")
    assert one_line(err) == f"{tool}: --ssh-port should be a port number 1..65535, not {port!r}"


def test_no_ssh_target_or_port_is_needed_when_no_remote_check_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = sample()
    del data["sshTarget"], data["sshPort"]
    code = doctor.main(["--outputs", str(write(tmp_path, data)), "--only", "backup"])
    assert code == 0
    assert "backup:last" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "tabby"], "doctor: --only tabby: no such check"),
        (["--resolve", "ok.test"], "doctor: --resolve 'ok.test': expected HOST:IP"),
        (["--resolve", "ok.test:127.0.0.1:http"], "doctor: --resolve 'ok.test:127.0.0.1:http'"),
        (["--ca-file", "/nonexistent.pem"], "doctor: --ca-file /nonexistent.pem: No such file"),
    ],
)
def test_doctor_refuses_bad_arguments_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = doctor.main(["--outputs", str(write(tmp_path, sample())), *args])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert one_line(err).startswith(message)


PULUMI = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
{body}
"""


@pytest.fixture
def no_wrapper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout without scripts/pulumi, and a pulumi stand-in first on PATH."""
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def test_without_outputs_the_stack_is_asked_and_status_lines_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_wrapper: Path
) -> None:
    log = tmp_path / "pulumi.log"
    body = "echo 'hemma: using the tunnel already listening on 127.0.0.1:15432'\n"
    body += f"cat <<'JSON'\n{json.dumps(sample(), indent=2)}\nJSON"
    executable(no_wrapper / "pulumi", PULUMI.format(log=log, body=body))
    code = tunnel.main(["--print", "huleedu_language_tool_service"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.endswith("-L 18085:127.0.0.1:8085 hemma\n"), "the alias, not sshTarget"
    assert log.read_text() == "stack output --json --show-secrets --stack hemma\n"


def test_scripts_pulumi_is_preferred_when_the_checkout_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_wrapper: Path
) -> None:
    log = tmp_path / "wrapper.log"
    (tmp_path / "scripts").mkdir()
    body = f"cat <<'JSON'\n{json.dumps(sample())}\nJSON"
    executable(tmp_path / "scripts" / "pulumi", PULUMI.format(log=log, body=body))
    assert tunnel.main(["--print"]) == 0
    assert log.read_text() == "stack output --json --show-secrets\n"


def test_a_failing_pulumi_is_one_line_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_wrapper: Path
) -> None:
    body = "echo 'warning: something' >&2; echo 'error: no stack named hemma' >&2; exit 255"
    executable(no_wrapper / "pulumi", PULUMI.format(log=tmp_path / "p.log", body=body))
    code = doctor.main([])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "doctor: `pulumi stack output --json --show-secrets --stack hemma` exited 255: "
        "error: no stack named hemma"
    )
