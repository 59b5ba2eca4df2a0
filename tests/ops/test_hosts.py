"""Outputs with more than one machine (schemaVersion 3): every check over ssh and every
forward goes to the machine its entry names, one login per machine, and outputs that
name a machine the tools cannot trust are refused before anything runs.

The stand-in ssh (tests/ops/helpers.FAKE_SSH) records the argv it is given: the
target and the ``-p`` before it say which machine a command went to.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ops import doctor, outputs, tunnel
from tests.ops.conftest import FakeSsh
from tests.ops.helpers import (
    GPU,
    GPU_PORT,
    GPU_TARGET,
    ON_GPU,
    SCHEMA,
    TARGET,
    commands_sent,
    golden_on_test,
    read_log,
    sample,
    schema_2,
    table,
    two_hosts,
    write,
)

ALIAS = "hemma"
"""Hemma's ssh target in every tool: the alias of ~/.ssh/config, not the outputs'."""
OPTIONS = (
    "-n -N -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -o ServerAliveInterval=30"
    " -o ServerAliveCountMax=3 -o ExitOnForwardFailure=yes"
)
TOOLS: dict[str, Callable[[list[str] | None], int]] = {
    "doctor": doctor.main,
    "tunnel": tunnel.main,
}


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return sorted(e.message for e in validator.iter_errors(document))


def run_doctor(
    capsys: pytest.CaptureFixture[str], fake: FakeSsh, path: Path, *args: str
) -> tuple[int, str, str]:
    base = ["--outputs", str(path), "--ssh-command", str(fake.path), "--retries", "0"]
    code = doctor.main([*base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def port_of(call: dict[str, Any]) -> int:
    """The -p ssh was given (right before the target), else 22."""
    before = call["argv"][: call["argv"].index(call["target"])]
    return int(before[-1]) if before[-2:-1] == ["-p"] else 22


def control_path(call: dict[str, Any]) -> str:
    return next(w for w in call["argv"] if w.startswith("ControlPath="))


def machine_of(call: dict[str, Any]) -> tuple[str, int]:
    return call["target"], port_of(call)


def checked(call: dict[str, Any]) -> str:
    """Which check a command is: internal:CONTAINER, tunnel:PORT, or the file it reads."""
    remote = call["remote"]
    if found := re.search(r"label=education\.hule\.hemma\.service=(\S+) ", remote):
        return f"internal:{found[1]}"
    if found := re.search(r"/dev/tcp/127\.0\.0\.1/([0-9]+)", remote):
        return f"tunnel:{found[1]}"
    return remote


def on_hemma(data: dict[str, Any]) -> int:
    """How many checks over ssh two_hosts() leaves on hemma: internal and tunnel
    checks (shared-postgres's too) but ON_GPU's, the three backup and two drift checks."""
    internal = len(data["healthChecks"]["internal"]) - len(ON_GPU)
    return internal + len(data["sshTunnels"]) + 1 - len(ON_GPU) + 3 + 2


HEMMA_REACHED = (ALIAS, 22)
GPU_REACHED = (GPU_TARGET, GPU_PORT)


# --- the two-machine outputs, and the helpers that read them ---------------------------


def test_the_two_machine_outputs_are_valid_stack_outputs() -> None:
    data = two_hosts()
    assert schema_errors(data) == []
    assert schema_errors(two_hosts(sample())) == []
    assert {data["placement"][name] for name in ON_GPU} == {GPU}
    assert Counter(data["placement"].values())[GPU] == len(ON_GPU)


def test_each_machine_and_entry_is_read_from_the_outputs() -> None:
    data = two_hosts()
    assert outputs.hosts(data) == {"hemma": (TARGET, 22), GPU: (GPU_TARGET, GPU_PORT)}
    assert outputs.ssh_host(data, GPU) == (GPU_TARGET, GPU_PORT)
    assert outputs.ssh_host(data, "hemma") == (TARGET, 22)
    internal = data["healthChecks"]["internal"]
    where = "healthChecks.internal"
    for name, entry in internal.items():
        expected = GPU if name in ON_GPU else "hemma"
        assert outputs.entry_host(data, entry, f"{where}.{name}") == expected, name
    assert outputs.entry_host(data, {"url": None, "probe": ["true"]}, "x") == "hemma"
    # shared-postgres's forward is hemma's, always.
    assert outputs.tunnels(data)[outputs.POSTGRES]["host"] == "hemma"


def test_outputs_of_schema_2_have_one_machine_at_the_top_level_target() -> None:
    old = schema_2(two_hosts(sample()))
    assert "hosts" not in old
    assert outputs.hosts(old) == {"hemma": (TARGET, 22)}
    old["sshPort"] = 2200
    assert outputs.ssh_host(old, "hemma") == (TARGET, 2200)
    entry = old["sshTunnels"]["huleedu_language_tool_service"]
    assert outputs.entry_host(old, entry, "sshTunnels.huleedu_language_tool_service") == "hemma"


# --- the doctor --------------------------------------------------------------------


def test_each_check_over_ssh_runs_on_its_own_machine_through_one_login_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = two_hosts()
    run_doctor(capsys, fake_ssh, write(tmp_path, data))
    calls = read_log(fake_ssh.log)
    logins = {machine_of(c): c for c in calls if c["login"]}
    assert [c["login"] for c in calls].count(True) == 2, "one login per machine"
    assert set(logins) == {HEMMA_REACHED, GPU_REACHED}
    paths = {machine: control_path(call) for machine, call in logins.items()}
    assert len(set(paths.values())) == 2, "a master of its own for each machine"

    sent = commands_sent(fake_ssh.log)
    where = {checked(c): machine_of(c) for c in sent}
    assert len(where) == len(sent), "each check sent once"
    on_gpu = {f"internal:{name}" for name in ON_GPU} | {"tunnel:9000", "tunnel:8085"}
    assert {check for check, machine in where.items() if machine == GPU_REACHED} == on_gpu
    internal = set(data["healthChecks"]["internal"]) - set(ON_GPU)
    on_hemma = {f"internal:{name}" for name in internal} | {"tunnel:5432", "tunnel:8082"}
    assert on_hemma <= {check for check, machine in where.items() if machine == HEMMA_REACHED}
    tunnels = len(data["sshTunnels"]) + 1  # shared-postgres's too
    assert len(where) == len(data["healthChecks"]["internal"]) + tunnels + 3 + 2  # backup, drift
    # Every command rides the master of the machine it goes to.
    assert all(control_path(c) == paths[machine_of(c)] for c in sent)


def test_the_table_names_the_machine_of_a_check_off_hemma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    _, out, _ = run_doctor(capsys, fake_ssh, write(tmp_path, two_hosts()), "--only", "internal")
    rows = table(out)
    assert rows["internal:huleedu_essay_embed_offload"]["TARGET"] == (
        "http://essay_embed_offload:9000/healthz on gpu"
    )
    assert rows["internal:grafana"]["TARGET"] == "http://grafana:3000/api/health"


def test_a_refused_key_on_one_machine_is_one_attempt_and_skips_only_its_checks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_ONLY_TARGET", GPU_TARGET)
    monkeypatch.setenv("FAKE_SSH_EXIT", "255")
    data = two_hosts()
    path = write(tmp_path, data)
    # The default retries: a refusal must not be tried again however many there are.
    code = doctor.main(["--outputs", str(path), "--ssh-command", str(fake_ssh.path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        f"doctor: cannot log in to {GPU_TARGET} over ssh (exit 255); every check over ssh"
        " on gpu is skipped, and no other login to it is tried"
    ]
    to_gpu = [c for c in read_log(fake_ssh.log) if c["target"] == GPU_TARGET]
    assert [c["login"] for c in to_gpu] == [True], "the one login, nothing after it"
    rows = table(out)
    skipped = {name for name, row in rows.items() if row["STATUS"] == "skipped"}
    gpu_checks = {f"internal:{name}" for name in ON_GPU} | {f"tunnel:{name}" for name in ON_GPU}
    assert skipped == gpu_checks
    assert rows["tunnel:huleedu_language_tool_service"]["DETAIL"] == (
        f"not run: ssh to {GPU_TARGET}: exit 255"
    )
    assert rows["internal:grafana"]["STATUS"] == "ok", "hemma's checks ran"
    hemma_sent = [c for c in commands_sent(fake_ssh.log) if c["target"] == ALIAS]
    assert len(hemma_sent) == on_hemma(data)


def test_a_refused_key_on_hemma_leaves_the_other_machine_checked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_ONLY_TARGET", ALIAS)
    monkeypatch.setenv("FAKE_SSH_EXIT", "255")
    data = two_hosts()
    path = write(tmp_path, data)
    code = doctor.main(["--outputs", str(path), "--ssh-command", str(fake_ssh.path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        "doctor: cannot log in to hemma over ssh (exit 255); every check over ssh"
        " on hemma is skipped, and no other login to it is tried"
    ]
    calls = read_log(fake_ssh.log)
    assert [c["login"] for c in calls if c["target"] == ALIAS] == [True], "one attempt"
    gpu_checks = {f"internal:{name}" for name in ON_GPU} | {f"tunnel:{name}" for name in ON_GPU}
    rows = table(out)
    assert {name for name, row in rows.items() if row["STATUS"] == "ok"} == gpu_checks
    assert sum(row["STATUS"] == "skipped" for row in rows.values()) == on_hemma(data)
    assert len(commands_sent(fake_ssh.log)) == len(gpu_checks)


def test_ssh_failing_on_one_machine_during_the_run_stops_only_that_machine(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SSH_ONLY_TARGET", GPU_TARGET)
    monkeypatch.setenv("FAKE_SSH_COMMAND_EXIT", "255")
    data = two_hosts()
    path = write(tmp_path, data)
    args = ["--concurrency", "1", "--retries", "2"]
    code, out, _ = run_doctor(capsys, fake_ssh, path, *args)
    assert code == 1
    sent = commands_sent(fake_ssh.log)
    assert len([c for c in sent if c["target"] == GPU_TARGET]) == 1, "not retried, none after"
    assert len([c for c in sent if c["target"] == ALIAS]) == on_hemma(data)
    statuses = Counter(row["STATUS"] for row in table(out).values())
    assert (statuses["FAIL"] >= 1, statuses["skipped"]) == (True, 3)


@pytest.mark.parametrize(
    ("args", "hemma"),
    [
        (["--ssh", "admin@other.test"], ("admin@other.test", 22)),
        (["--ssh-port", "2200"], (ALIAS, 2200)),
        (["--ssh", "admin@other.test", "--ssh-port", "22"], ("admin@other.test", 22)),
    ],
)
def test_ssh_and_ssh_port_are_hemmas_only(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    args: list[str],
    hemma: tuple[str, int],
) -> None:
    run_doctor(capsys, fake_ssh, write(tmp_path, two_hosts()), "--only", "internal", *args)
    where = {checked(c): machine_of(c) for c in read_log(fake_ssh.log) if not c["control"]}
    for name in two_hosts()["healthChecks"]["internal"]:
        assert where[f"internal:{name}"] == (GPU_REACHED if name in ON_GPU else hemma), name


def test_hemma_s_alias_comes_from_hemma_ssh_and_the_gpu_from_the_outputs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_ssh: FakeSsh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEMMA_SSH", "hemma-lab")
    run_doctor(capsys, fake_ssh, write(tmp_path, two_hosts()), "--only", "tunnel")
    where = {checked(c): machine_of(c) for c in commands_sent(fake_ssh.log)}
    assert where == {
        "tunnel:9000": GPU_REACHED,
        "tunnel:8085": GPU_REACHED,
        "tunnel:8082": ("hemma-lab", 22),
        "tunnel:8083": ("hemma-lab", 22),
        "tunnel:5432": ("hemma-lab", 22),
    }


def test_only_the_machines_of_the_chosen_checks_are_logged_in_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    only = "internal:huleedu_language_tool_service"
    run_doctor(capsys, fake_ssh, write(tmp_path, two_hosts()), "--only", only)
    assert {machine_of(c) for c in read_log(fake_ssh.log)} == {GPU_REACHED}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_help_says_the_ssh_options_are_hemmas_only(
    capsys: pytest.CaptureFixture[str], tool: str
) -> None:
    with pytest.raises(SystemExit):
        TOOLS[tool](["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--ssh TARGET", "--ssh-port PORT"):
        at = text.index(option, text.index("options:"))
        assert "hemma only" in text[at : at + 200], option


# --- scripts/tunnel ------------------------------------------------------------------


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = tunnel.main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture
def no_autossh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.usefixtures("no_autossh")
def test_tunnel_opens_one_ssh_per_machine_each_to_its_own_target_and_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, two_hosts(sample()))
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print")
    assert code == 0
    assert lines == [
        f"ssh {OPTIONS} -L 15432:127.0.0.1:5432 {ALIAS}",
        f"ssh {OPTIONS} -p {GPU_PORT} -L 19000:127.0.0.1:9000 -L 18085:127.0.0.1:8085 {GPU_TARGET}",
    ]


@pytest.mark.usefixtures("no_autossh")
def test_tunnel_ssh_and_ssh_port_are_hemmas_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, two_hosts(sample()))
    args = ["--print", "--ssh", "me@h", "--ssh-port", "443"]
    code, lines, _ = printed(capsys, "--outputs", str(path), *args)
    assert code == 0
    assert lines == [
        f"ssh {OPTIONS} -p 443 -L 15432:127.0.0.1:5432 me@h",
        f"ssh {OPTIONS} -p {GPU_PORT} -L 19000:127.0.0.1:9000 -L 18085:127.0.0.1:8085 {GPU_TARGET}",
    ]


@pytest.mark.usefixtures("no_autossh")
def test_named_tunnels_go_to_their_own_machine_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, two_hosts(sample()))
    names = ["shared-postgres", "huleedu_language_tool_service"]
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print", *names)
    assert (code, [line.split()[-3:] for line in lines]) == (
        0,
        [["-L", "15432:127.0.0.1:5432", ALIAS], ["-L", "18085:127.0.0.1:8085", GPU_TARGET]],
    )
    offload = "huleedu_essay_embed_offload"
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print", offload)
    assert lines == [f"ssh {OPTIONS} -p {GPU_PORT} -L 19000:127.0.0.1:9000 {GPU_TARGET}"]


@pytest.mark.usefixtures("no_autossh")
def test_tunnel_exports_each_forward_as_the_stack_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exported command of a forward on gpu (what another tool would run) and the
    ssh scripts/tunnel runs go to the same user@host and port."""
    data = two_hosts(sample())
    for group in tunnel.commands(data, [], ALIAS, False):
        for name, local, address in group.forwards:
            if group.host == "hemma":
                continue
            command = data["sshTunnels"][name]["command"]
            assert command == f"ssh -N -p {GPU_PORT} -L {local}:{address} {group.target}"
            assert group.argv[-1] == group.target == GPU_TARGET


@pytest.mark.usefixtures("no_autossh")
def test_tunnel_of_schema_2_outputs_is_one_ssh_to_the_alias_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, schema_2(two_hosts(sample())))
    code, lines, _ = printed(capsys, "--outputs", str(path), "--print")
    assert code == 0
    assert lines == [
        f"ssh {OPTIONS} -L 19000:127.0.0.1:9000 -L 18085:127.0.0.1:8085"
        f" -L 15432:127.0.0.1:5432 {ALIAS}"
    ]


def test_doctor_on_schema_2_outputs_runs_everything_on_hemma_through_one_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh
) -> None:
    data = golden_on_test()
    data["healthChecks"]["public"] = {}
    old = schema_2(data)
    run_doctor(capsys, fake_ssh, write(tmp_path, old))
    calls = read_log(fake_ssh.log)
    assert {machine_of(c) for c in calls} == {HEMMA_REACHED}
    assert [c["login"] for c in calls].count(True) == 1
    tunnels = len(old["sshTunnels"]) + 1
    assert len(commands_sent(fake_ssh.log)) == len(old["healthChecks"]["internal"]) + tunnels + 5


# --- refusals ------------------------------------------------------------------------


def bad_hosts_key(data: dict[str, Any]) -> None:
    data["hosts"]["gpu -oProxyCommand=x"] = data["hosts"].pop(GPU)


def too_long(data: dict[str, Any]) -> None:
    data["hosts"]["g" * 32] = data["hosts"][GPU]


def entry_host(value: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["sshTunnels"]["huleedu_language_tool_service"]["host"] = value

    return change


def gpu_target(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["hosts"][GPU]["sshTarget"] = value

    return change


def no_hosts(data: dict[str, Any]) -> None:
    del data["hosts"]


WHERE = "sshTunnels.huleedu_language_tool_service.host"
NAME = "a host name ([a-z][a-z0-9-]{0,30})"
REFUSALS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "hosts key": (
        bad_hosts_key,
        f"outputs hosts holds 'gpu -oProxyCommand=x', which is not {NAME}",
    ),
    "hosts key too long": (too_long, f"outputs hosts holds {'g' * 32!r}, which is not {NAME}"),
    "entry host option": (
        entry_host("-oProxyCommand=touch pwned"),
        f"outputs {WHERE} should be {NAME}, not '-oProxyCommand=touch pwned'",
    ),
    "entry host upper": (entry_host("GPU"), f"outputs {WHERE} should be {NAME}, not 'GPU'"),
    "entry host unknown": (
        entry_host("nas"),
        f"outputs {WHERE} is 'nas', which is not in hosts (gpu, hemma)",
    ),
    "gpu target option": (
        gpu_target("-oProxyCommand=touch pwned"),
        "outputs hosts.gpu.sshTarget should be user@host or null, not '-oProxyCommand=touch pwned'",
    ),
    "gpu target spaces": (
        gpu_target("ops@gpu.test -p 2"),
        "outputs hosts.gpu.sshTarget should be user@host or null, not 'ops@gpu.test -p 2'",
    ),
    "gpu target host option": (
        gpu_target("ops@-gpu.test"),
        "outputs hosts.gpu.sshTarget should be user@host or null, not 'ops@-gpu.test'",
    ),
    "gpu target null": (gpu_target(None), "outputs have no sshTarget for gpu (null)"),
    "no hosts": (no_hosts, "outputs have no hosts"),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_machine_the_tools_cannot_trust_is_one_line_and_nothing_runs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_ssh: FakeSsh,
    tool: str,
    case: str,
) -> None:
    change, message = REFUSALS[case]
    data = two_hosts(sample())
    change(data)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no ssh for the tunnel to start
    args = ["--outputs", str(write(tmp_path, data))]
    if tool == "doctor":
        args += ["--ssh-command", str(fake_ssh.path), "--only", "tunnel"]
    code = TOOLS[tool](args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"{tool}: {message}"), err
    assert read_log(fake_ssh.log) == []


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_schema_2_outputs_whose_entry_names_another_machine_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_ssh: FakeSsh, tool: str
) -> None:
    old = schema_2(sample())
    old["sshTunnels"]["huleedu_language_tool_service"]["host"] = GPU
    args = ["--outputs", str(write(tmp_path, old)), "--print" if tool == "tunnel" else "--only"]
    if tool == "doctor":
        args += ["tunnel", "--ssh-command", str(fake_ssh.path)]
    code = TOOLS[tool](args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"{tool}: outputs {WHERE} is 'gpu', which is not in hosts (hemma)\n"
    assert read_log(fake_ssh.log) == []
