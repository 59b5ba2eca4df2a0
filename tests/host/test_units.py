"""Host systemd units: the runbooks' timers and the GPU servers, as declared, installed in a
sandbox and checked with the tools that read them (systemd-analyze, shellcheck)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.config.reading import parse
from components.config.stack import StackConfig
from components.foundation.commands import as_command
from components.host.unit_files import UnitGroup, daemon_group, install_script, remove_script
from components.main import host_units
from components.model.rollout import in_service_script, running_container
from tests.harness import (
    OPERATOR_SECRETS,
    OPERATOR_VALUES,
    ROOT,
    Program,
    as_cli_value,
    run_program,
    site_config,
    with_classhub,
)

COMMAND = "command:remote:Command"


def config_with(**overrides: Any) -> StackConfig:
    values = copy.deepcopy(site_config())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return parse({k: as_cli_value(v) for k, v in values.items()}, OPERATOR_SECRETS)


def unit_groups(config: StackConfig) -> list[UnitGroup]:
    return host_units(config, config.apps())


def groups_by_name(config: StackConfig) -> dict[str, UnitGroup]:
    return {group.name: group for group in unit_groups(config)}


def file_of(group: UnitGroup, suffix: str) -> str:
    return next(f.content for f in group.files if f.path.endswith(suffix))


RUNBOOK_SANDBOX_SERVICE = """\
[Unit]
Description=Skriptoteket sandbox snapshot cleanup
Requires=snap.docker.dockerd.service
After=snap.docker.dockerd.service

[Service]
Type=oneshot
ExecStart=/usr/local/lib/hemma/skriptoteket-sandbox-snapshots-cleanup-in-skriptoteket-web pdm run python -m skriptoteket.cli cleanup-sandbox-snapshots
"""  # noqa: E501 (the runbook's unit file, but for the container found by its label)


RUNBOOK_SANDBOX_TIMER = """\
[Unit]
Description=Run sandbox snapshot cleanup hourly

[Timer]
OnCalendar=hourly
Persistent=true

[Install]
WantedBy=timers.target
"""


def secret_values(program: Program, config: dict[str, Any]) -> set[str]:
    generated = {
        r.state["result"] for r in program.of_type("random:index/randomPassword:RandomPassword")
    }
    operator = {str(config[k]) for k in ("sshPrivateKey", "smtpPassword", "openaiApiKey")}
    return generated | operator | {f"PGPASSWORD={p}" for p in generated}


@dataclass
class Sandbox:
    root: Path
    bin: Path

    def run(self, script: str, stdin: str = "") -> list[str]:
        """Run ``script`` as the remote command would; return the systemctl calls."""
        log = self.bin / "systemctl.log"
        log.write_text("")
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HEMMA_ROOT": str(self.root),
        }
        done = subprocess.run(
            ["sh", "-c", as_command(script)], input=stdin, capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        return log.read_text().splitlines()

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def sudo_calls(self) -> list[str]:
        return (self.bin / "sudo.log").read_text().splitlines()


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/sudo.log"\n'
        '[ "$1" = -n ] || { echo "sudo must not prompt" >&2; exit 1; }\nshift\nexec "$@"\n'
    )
    (bin_dir / "systemctl").write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/systemctl.log"\n'
    )
    for stub in ("sudo", "systemctl"):
        (bin_dir / stub).chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    return Sandbox(root=root, bin=bin_dir)


def all_groups() -> list[UnitGroup]:
    return unit_groups(config_with(**with_classhub({}), gpu=MANAGED_GPU))


def exec_paths(group: UnitGroup) -> set[str]:
    paths = set()
    for f in group.files:
        for line in f.content.splitlines():
            if line.startswith("ExecStart="):
                paths.add(line.removeprefix("ExecStart=").lstrip("-@+!:").split()[0])
    return paths


@pytest.fixture
def unit_root(sandbox: Sandbox) -> Iterator[tuple[Sandbox, list[str]]]:
    """Every generated unit installed by its own install script into a root that
    systemd-analyze can verify: systemd's units, a stub for the host's Docker
    service, and stub executables at the ExecStart paths."""
    shutil.copytree("/usr/lib/systemd", sandbox.path("/usr/lib/systemd"), symlinks=True)
    stub_unit = (
        "[Unit]\nDescription=stand-in for the host's Docker\n[Service]\nExecStart=/bin/true\n"
    )
    sandbox.path("/etc/systemd/system").mkdir(parents=True, exist_ok=True)
    sandbox.path("/etc/systemd/system/snap.docker.dockerd.service").write_text(stub_unit)
    names: list[str] = []
    for group in all_groups():
        sandbox.run(install_script(group), stdin="PGPASSWORD=x\n" if group.secret_file else "")
        for path in exec_paths(group):
            stub = sandbox.path(path)
            if not stub.exists():
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\n")
                stub.chmod(0o755)
        names += group.unit_names
    yield sandbox, names


def test_the_sandbox_snapshot_units_are_the_runbooks_unit_files() -> None:
    group = groups_by_name(config_with())["skriptoteket-sandbox-snapshots-cleanup"]
    assert file_of(group, ".service") == RUNBOOK_SANDBOX_SERVICE
    assert file_of(group, ".timer") == RUNBOOK_SANDBOX_TIMER


def test_every_runbook_unit_is_declared_with_its_name_and_schedule() -> None:
    program = run_program()
    units = {name: spec["schedule"] for name, spec in program.outputs["hostUnits"].items()}
    assert units == {
        "skriptoteket-sandbox-snapshots-cleanup.service": "hourly",
        "skriptoteket-sandbox-snapshots-cleanup.timer": "hourly",
        "skriptoteket-login-events-cleanup.service": "daily",
        "skriptoteket-login-events-cleanup.timer": "daily",
        "skriptoteket-session-files-cleanup.service": "hourly",
        "skriptoteket-session-files-cleanup.timer": "hourly",
        "cleanup-smart-logs.service": "daily",
        "cleanup-smart-logs.timer": "daily",
        "hemma-backup.service": "*-*-* 03:15:00",
        "hemma-backup.timer": "*-*-* 03:15:00",
        "hemma-backup-check.service": "Sat *-*-* 05:00:00",
        "hemma-backup-check.timer": "Sat *-*-* 05:00:00",
        "hemma-restore-drill.service": "Sun *-*-* 05:00:00",
        "hemma-restore-drill.timer": "Sun *-*-* 05:00:00",
        "hemma-host-metrics.service": "*:*:00",
        "hemma-host-metrics.timer": "*:*:00",
        "hemma-drift-check.service": "hourly",
        "hemma-drift-check.timer": "hourly",
    }, "the hand-made GPU units are left alone until they are handed over"


MANAGED_GPU: dict[str, Any] = {
    "llama": {
        "manage": True,
        "port": 8082,
        "executable": "/opt/llama.cpp/build/bin/llama-server",
        "args": ["--model", "/srv/models/qwen3-coder-30b.gguf", "--n-gpu-layers", "999"],
        "environment": {"HSA_OVERRIDE_GFX_VERSION": "11.0.0", "ROCR_VISIBLE_DEVICES": "0"},
        "workingDirectory": "/opt/llama.cpp",
    },
    "tabby": {
        "manage": True,
        "port": 8083,
        "executable": "/usr/local/bin/tabby",
        "args": ["serve", "--model", "Qwen2.5-Coder-1.5B", "--device", "rocm"],
    },
}
"""The running units' command lines, as the operator copies them into config."""


def test_cleanup_jobs_run_the_cli_in_skriptoteket_web_after_snap_docker() -> None:
    groups = groups_by_name(config_with())
    for command in ("cleanup-sandbox-snapshots", "cleanup-login-events", "cleanup-session-files"):
        group = groups[f"skriptoteket-{command.removeprefix('cleanup-')}-cleanup"]
        service = file_of(group, ".service")
        script = f"/usr/local/lib/hemma/{group.name}-in-skriptoteket-web"
        assert f"ExecStart={script} pdm run python -m skriptoteket.cli {command}\n" in service
        installed = next(f for f in group.files if f.path == script)
        assert installed.mode == "0755"
        assert installed.content == in_service_script(
            "/snap/bin/docker", "skriptoteket-web", ("-e", "PYTHONPATH=/app/src")
        )
        assert "Requires=snap.docker.dockerd.service\nAfter=snap.docker.dockerd.service" in service
        assert "Persistent=true" in file_of(group, ".timer")


def test_the_docker_path_and_service_are_configurable() -> None:
    config = config_with(dockerPath="/usr/bin/docker", dockerService="docker.service")
    group = groups_by_name(config)["skriptoteket-login-events-cleanup"]
    assert "Requires=docker.service" in file_of(group, ".service")
    script = next(f for f in group.files if "-in-" in f.path)
    assert 'exec /usr/bin/docker exec -e PYTHONPATH=/app/src "$container" "$@"\n' in (
        script.content
    )


def in_service(tmp_path: Path, healthy: str, running: str, *args: str) -> list[str]:
    """What the job's script hands docker, with ``docker ps`` listing ``healthy``
    under the health filter and ``running`` under the status filter."""
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = ps ]; then\n'
        '  case "$*" in *health=healthy*) printf %s "$HEALTHY" ;; *) printf %s "$RUNNING" ;; esac\n'
        "  exit 0\n"
        "fi\n"
        'printf "%s\\n" "$@"\n'
    )
    docker.chmod(0o755)
    script = tmp_path / "in-service"
    script.write_text(in_service_script(str(docker), "skriptoteket-web", ("-e", "X=1")))
    script.chmod(0o755)
    done = subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env={"HEALTHY": healthy, "RUNNING": running},
        check=True,
    )
    return done.stdout.splitlines()


def test_a_job_runs_in_the_newest_healthy_copy_or_else_a_running_one_or_the_name(
    tmp_path: Path,
) -> None:
    """skriptoteket-web deploys start-first: its name changes, its label does not, and
    during a deploy (or after one that failed) the newest copy is not the serving one."""
    assert in_service(tmp_path, "0123456789ab\n", "ba9876543210\n", "pdm", "a b", "$HOME") == [
        "exec", "-e", "X=1", "0123456789ab", "pdm", "a b", "$HOME",
    ]  # fmt: skip
    assert in_service(tmp_path, "", "ba9876543210\n", "true") == [
        "exec", "-e", "X=1", "ba9876543210", "true",
    ]  # fmt: skip
    # None labelled (the hand-made server, a delete-first container): by its name.
    assert in_service(tmp_path, "", "", "true") == ["exec", "-e", "X=1", "skriptoteket-web", "true"]


def test_the_lookup_asks_for_a_healthy_copy_then_a_running_one_then_the_name() -> None:
    listed = "/snap/bin/docker ps -q --filter label=education.hule.hemma.service=skriptoteket-web"
    assert running_container("/snap/bin/docker", "skriptoteket-web") == (
        f"{{ {listed} --filter health=healthy | head -n 1 | grep . "
        f"|| {listed} --filter status=running | head -n 1 | grep . "
        "|| echo skriptoteket-web; }"
    )


def test_unmanaged_gpu_servers_get_no_unit_and_no_relay() -> None:
    groups = groups_by_name(config_with())
    assert not {"llama-server-rocm", "tabby", "hemma-relay-llama", "hemma-relay-tabby"} & set(
        groups
    )


def test_a_handed_over_gpu_server_keeps_its_command_line_and_environment() -> None:
    groups = groups_by_name(config_with(gpu=MANAGED_GPU))
    llama = file_of(groups["llama-server-rocm"], "llama-server-rocm.service")
    assert (
        "ExecStart=/opt/llama.cpp/build/bin/llama-server --model /srv/models/qwen3-coder-30b.gguf"
        " --n-gpu-layers 999 --host 127.0.0.1 --port 8082\n"
    ) in llama
    assert "Environment=HSA_OVERRIDE_GFX_VERSION=11.0.0\n" in llama
    assert "Environment=ROCR_VISIBLE_DEVICES=0\n" in llama
    assert "WorkingDirectory=/opt/llama.cpp\n" in llama
    tabby = file_of(groups["tabby"], "tabby.service")
    assert "ExecStart=/usr/local/bin/tabby serve --model Qwen2.5-Coder-1.5B" in tabby
    assert "--host 127.0.0.1 --port 8083" in tabby
    for unit in (llama, tabby):
        assert "Restart=on-failure" in unit
        assert "User=paunchygent" in unit
        assert "WantedBy=multi-user.target" in unit


def test_gpu_servers_listen_on_loopback_and_reach_the_containers_through_docker0() -> None:
    """The runbooks' `curl localhost:8082/health` and the tunnels need loopback; the
    containers call host.docker.internal, which is docker0 (172.17.0.1)."""
    groups = groups_by_name(config_with(gpu=MANAGED_GPU))
    socket = file_of(groups["hemma-relay-llama"], ".socket")
    relay = file_of(groups["hemma-relay-llama"], ".service")
    assert "ListenStream=172.17.0.1:8082\n" in socket
    assert "FreeBind=yes\n" in socket
    assert "ExecStart=/usr/lib/systemd/systemd-socket-proxyd 127.0.0.1:8082\n" in relay
    assert groups["hemma-relay-llama"].start == ("hemma-relay-llama.socket",)
    tunnels = run_program({**site_config(), "gpu": {**site_config()["gpu"], **MANAGED_GPU}})
    llama = tunnels.outputs["sshTunnels"]["llama-server"]
    assert llama["remote"] == "127.0.0.1:8082"


@pytest.mark.tools
def test_the_relay_forwards_docker0_to_the_loopback_server(tmp_path: Path) -> None:
    """systemd-socket-proxyd, socket-activated as the relay's units start it, carries a
    connection on one address to the server on another (127.0.0.2 stands in for docker0)."""
    import http.server
    import socketserver
    import threading
    import urllib.request

    from components.host.unit_files import SOCKET_PROXY

    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is required (apt-get install systemd)"

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"llama ok")

        def log_message(self, *args: Any) -> None:
            pass

    with socketserver.TCPServer(("127.0.0.1", 0), Health) as server:
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        relay = subprocess.Popen(
            [activate, "-l", f"127.0.0.2:{port}", SOCKET_PROXY, f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE,
        )
        try:
            body = b""
            for _ in range(50):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.2:{port}/health", timeout=2) as r:
                        body = r.read()
                    break
                except OSError:
                    time.sleep(0.1)
            assert body == b"llama ok"
        finally:
            relay.terminate()
            relay.wait(timeout=10)
            server.shutdown()


def test_each_unit_group_can_be_switched_off() -> None:
    off = {"enabled": False}
    config = config_with(gpu=off, backups=off, smartLogs=off, skriptoteketCleanup=off, classHub=off)
    assert [g.name for g in unit_groups(config)] == [
        "hemma-host-metrics",
        "hemma-drift-check",
    ], "the alerts' own"
    no_gpu = groups_by_name(config_with(gpu=off))
    assert "llama-server-rocm" not in no_gpu and "tabby" not in no_gpu
    assert "skriptoteket-login-events-cleanup" in no_gpu


def test_class_hub_retention_runs_only_when_class_hub_is_enabled() -> None:
    assert "classhub-retention" not in groups_by_name(config_with())
    group = groups_by_name(config_with(**with_classhub({})))["classhub-retention"]
    service = file_of(group, ".service")
    assert "manage.py prune_submissions --older-than-days 90" in service
    assert "manage.py prune_student_events --older-than-days 180" in service
    assert group.schedule == "daily"


def test_smart_logs_are_kept_thirty_days() -> None:
    service = file_of(groups_by_name(config_with())["cleanup-smart-logs"], ".service")
    assert "/usr/bin/find /root/logs -type f ( -name incident-*.log -o" in service
    assert "-path /root/logs/smart/* ) -mtime +30 -delete" in service


def test_no_secret_appears_in_a_command_string_or_unit_file() -> None:
    config = {**site_config(), "smtpPassword": "smtp-secret-value", "openaiApiKey": "sk-secret"}
    program = run_program(config, OPERATOR_SECRETS | {"smtpPassword", "openaiApiKey"})
    commands = program.of_type(COMMAND)
    assert commands
    secrets = secret_values(program, config)
    for resource in commands:
        for key in ("create", "update", "delete"):
            for secret in secrets:
                assert secret not in resource.inputs.get(key, ""), f"{resource.name}.{key} leaks"
        assert {"stdout", "stderr"} <= set(resource.additional_secret_outputs), resource.name
    backup = next(r for r in commands if r.name == "hemma-backup-install")
    assert backup.secret_input("stdin"), "the restic repository's secrets travel on stdin"
    assert backup.inputs["logging"] == "none"
    assert f"RESTIC_PASSWORD='{OPERATOR_VALUES['resticPassword']}'" in backup.inputs["stdin"]


def test_host_units_use_the_pinned_ssh_connection() -> None:
    program = run_program()
    for resource in program.of_type(COMMAND):
        connection = resource.inputs["connection"]
        assert connection["host"] == "hemma.hule.education", resource.name
        assert connection["hostKey"].startswith("ssh-ed25519 "), resource.name
        assert resource.secret_input("connection"), f"{resource.name}: the private key is secret"
        assert resource.inputs["addPreviousOutputInEnv"] is False


def test_install_is_idempotent_updates_cleanly_and_removes_everything(sandbox: Sandbox) -> None:
    group = groups_by_name(config_with())["skriptoteket-login-events-cleanup"]
    timer = sandbox.path("/etc/systemd/system/skriptoteket-login-events-cleanup.timer")
    service = sandbox.path("/etc/systemd/system/skriptoteket-login-events-cleanup.service")

    first = sandbox.run(install_script(group))
    assert first == [
        "daemon-reload",
        "enable skriptoteket-login-events-cleanup.timer",
        "restart skriptoteket-login-events-cleanup.timer",
    ]
    assert timer.read_text() == file_of(group, ".timer")
    assert service.read_text() == file_of(group, ".service")
    assert oct(timer.stat().st_mode & 0o777) == "0o644"
    installed_at = timer.stat().st_mtime_ns

    time.sleep(0.01)
    again = sandbox.run(install_script(group))
    assert again == [
        "enable skriptoteket-login-events-cleanup.timer",
        "start skriptoteket-login-events-cleanup.timer",
    ]
    assert timer.stat().st_mtime_ns == installed_at, "an unchanged file is not rewritten"

    changed = groups_by_name(
        config_with(skriptoteketCleanup={"loginEventsSchedule": "*-*-* 04:00:00"})
    )["skriptoteket-login-events-cleanup"]
    update = sandbox.run(install_script(changed))
    assert update == first
    assert "OnCalendar=*-*-* 04:00:00" in timer.read_text()

    removed = sandbox.run(remove_script(changed))
    assert removed == [
        "disable --now skriptoteket-login-events-cleanup.timer "
        "skriptoteket-login-events-cleanup.service",
        "daemon-reload",
    ]
    assert not timer.exists() and not service.exists()
    assert all(call.startswith("-n ") for call in sandbox.sudo_calls())


def test_a_long_running_service_is_restarted_when_its_unit_changes(sandbox: Sandbox) -> None:
    group = groups_by_name(config_with(gpu=MANAGED_GPU))["tabby"]
    assert sandbox.run(install_script(group))[-1] == "restart tabby.service"
    assert sandbox.run(install_script(group))[-1] == "start tabby.service"
    moved = config_with(gpu={**MANAGED_GPU, "tabby": {**MANAGED_GPU["tabby"], "port": 8093}})
    assert (
        sandbox.run(install_script(groups_by_name(moved)["tabby"]))[-1] == "restart tabby.service"
    )


@pytest.mark.tools
def test_every_unit_passes_systemd_analyze_verify(unit_root: tuple[Sandbox, list[str]]) -> None:
    sandbox, names = unit_root
    assert len(names) == 28
    done = subprocess.run(
        ["systemd-analyze", f"--root={sandbox.root}", "verify", *names],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.tools
def test_the_verify_check_fails_on_a_misspelt_key(unit_root: tuple[Sandbox, list[str]]) -> None:
    sandbox, _ = unit_root
    timer = sandbox.path("/etc/systemd/system/cleanup-smart-logs.timer")
    timer.write_text(timer.read_text().replace("Persistent=", "Persistant="))
    done = subprocess.run(
        ["systemd-analyze", f"--root={sandbox.root}", "verify", "cleanup-smart-logs.timer"],
        capture_output=True,
        text=True,
    )
    assert "Persistant" in done.stderr


@pytest.mark.tools
def test_every_script_the_remote_commands_run_passes_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    scripts = sorted((ROOT / "components" / "backups" / "files").glob("*.sh"))
    for group in all_groups():
        for kind, script in (("install", install_script(group)), ("remove", remove_script(group))):
            path = tmp_path / f"{group.name}-{kind}.sh"
            path.write_text("#!/usr/bin/env bash\n" + script)
            scripts.append(path)
        for index, installed in enumerate(group.files):
            if installed.content.startswith("#!/bin/sh\n"):
                path = tmp_path / f"{group.name}-file-{index}.sh"
                path.write_text(installed.content)
                scripts.append(path)
    assert any("-file-" in path.name for path in scripts), "the jobs' in-service scripts"
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_an_install_command_whose_unit_holds_a_secret_value_is_secret() -> None:
    """Unit files travel base64-encoded in the install command, where no check of the
    command text can find a secret: the unit's own content decides."""
    import pulumi_command as command

    from components.host.systemd_unit import SystemdUnit, SystemdUnitArgs
    from components.model.host import Daemon
    from tests.harness import run_declarations

    group = daemon_group(
        Daemon("token-server", "x", ("/usr/bin/server", "--token", "TOKEN1234567"), user="x")
    )
    connection = command.remote.ConnectionArgs(host="h", user="u")

    def declare(values: frozenset[str]) -> None:
        SystemdUnit("token-server", SystemdUnitArgs(group, connection, secret_values=values))

    marked = run_declarations(lambda: declare(frozenset({"TOKEN1234567"})))
    plain = run_declarations(lambda: declare(frozenset({"SOMETHING-ELSE"})))
    assert marked.named("token-server-install").secret_input("create")
    assert not plain.named("token-server-install").secret_input("create")
