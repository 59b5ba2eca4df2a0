"""The operator's two commands, run with stand-ins for ``pulumi`` and ``ssh`` on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.ops.helpers import free_port

pytestmark = pytest.mark.tools

SCRIPTS = [
    *sorted(
        p for p in (ROOT / "scripts").iterdir() if p.read_text().startswith("#!/usr/bin/env bash")
    ),
    ROOT / ".ci" / "run",
]

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "{log}"
{body}
"""


def stub(bin_dir: Path, name: str, body: str = "exit 0") -> Path:
    log = bin_dir / f"{name}.log"
    path = bin_dir / name
    path.write_text(STUB.format(log=log, body=body))
    path.chmod(0o755)
    return log


SSH_STUB = """
args="$*"
case "$1" in
  -G) printf 'hostname hemma\\ncontrolmaster %s\\ncontrolpersist %s\\n' {master} {persist}
      [ -z "{path}" ] || printf 'controlpath %s\\n' "{path}"
      exit 0;;
esac
[ "$1" = -n ] || {{ echo "ssh without -n would read the caller's stdin" >&2; exit 97; }}
case "$args" in
  *" -L "*)  # a forward: listen on its local port until stopped, as ssh -N -L does
    local_port=${{args##* -L }}; local_port=${{local_port%%:*}}
    exec python3 -c 'import socket, sys, time
s = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    s.accept()[0].close()' "$local_port";;
  *"docker version"*) exit {docker};;
  *"sudo -n true"*) exit {sudo};;
esac
exit 0
"""


def run_script(
    tmp_path: Path,
    *args: str,
    docker: int = 0,
    sudo: int = 0,
    master: str = "auto",
    persist: str = "600",
    path: str = "/home/op/.ssh/cm-0123abcd",
    stdin: str = "",
    env_extra: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run scripts/pulumi with stand-ins for pulumi and ssh that record their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub(
        bin_dir,
        "pulumi",
        'case "$1" in config) if [ "$2" = get ]; then\n'
        '  [ "$3" = local ] && [ -n "${STUB_LOCAL:-}" ] && { echo true; exit 0; }\n'
        '  [ "$4" = postgres.tunnelPort ] && { echo "$STUB_TUNNEL_PORT"; exit 0; }; exit 1\n'
        'fi; cat > "$(dirname "$0")/stdin";; esac\n'
        'echo "PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL"\n'
        'echo "DOCKER_CONTEXT=${DOCKER_CONTEXT-unset} DOCKER_HOST=${DOCKER_HOST-unset}"',
    )
    stub(
        bin_dir,
        "ssh",
        SSH_STUB.format(master=master, persist=persist, path=path, docker=docker, sudo=sudo),
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PULUMI_CONFIG_PASSPHRASE": "test",
        "TMPDIR": str(tmp_path),
        "STUB_TUNNEL_PORT": str(free_port()),
        **(env_extra or {}),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulumi"), *(args or ("preview", "--diff"))],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=300,
    )
    return done, bin_dir


def pulumi_calls(bin_dir: Path) -> list[str]:
    return (bin_dir / "pulumi.log").read_text().splitlines()


def test_every_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    done = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_preview_uses_a_local_backend_opens_the_tunnel_and_targets_the_stack(
    tmp_path: Path,
) -> None:
    done, bin_dir = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"PULUMI_BACKEND_URL=file://{tmp_path}/.pulumi-hemma" in done.stdout
    calls = pulumi_calls(bin_dir)
    assert "stack select hemma --create --non-interactive" in calls
    assert calls[-1] == "preview --diff --parallel 4 --stack hemma", "parallelism is bounded"
    ssh_calls = (bin_dir / "ssh.log").read_text()
    port = next(line for line in done.stderr.splitlines() if " -> 127.0.0.1:5432 on " in line)
    assert port.startswith("tunnel: 127.0.0.1:") and port.endswith(" on hemma"), done.stderr
    forward = next(call for call in ssh_calls.splitlines() if " -L " in call)
    assert forward.endswith(":127.0.0.1:5432 hemma")
    assert "ControlMaster=no -o ControlPath=none" in forward, "its own ssh process"
    assert all(call.startswith(("-n ", "-G ")) for call in ssh_calls.splitlines()), (
        "no ssh reads stdin"
    )
    assert not list((tmp_path / ".cache" / "hemma" / "tunnels").iterdir()), "and it is gone"


def test_preview_stops_when_docker_needs_sudo(tmp_path: Path) -> None:
    done, bin_dir = run_script(tmp_path, docker=1)
    assert done.returncode != 0
    assert "must reach the Docker socket without sudo" in done.stderr
    assert not any(call.startswith("preview") for call in pulumi_calls(bin_dir))


def test_up_stops_before_changing_anything_without_passwordless_sudo(tmp_path: Path) -> None:
    done, bin_dir = run_script(tmp_path, "up", sudo=1)
    assert done.returncode != 0
    assert "needs passwordless sudo" in done.stderr
    assert not any(call.startswith("up") for call in pulumi_calls(bin_dir))


@pytest.mark.parametrize(
    ("master", "persist", "path", "missing"),
    [
        ("no", "600", "/home/op/.ssh/cm-0123abcd", "ControlMaster"),
        ("auto", "no", "/home/op/.ssh/cm-0123abcd", "ControlPersist"),
        ("auto", "600", "", "ControlPath"),  # `ssh -G` prints none when it is unset
        ("auto", "600", "none", "ControlPath"),
    ],
)
def test_preview_stops_unless_ssh_is_multiplexed(
    tmp_path: Path, master: str, persist: str, path: str, missing: str
) -> None:
    done, bin_dir = run_script(tmp_path, master=master, persist=persist, path=path)
    assert done.returncode != 0
    assert missing in done.stderr
    assert not any(call.startswith("preview") for call in pulumi_calls(bin_dir))


def test_an_operators_own_parallelism_is_kept(tmp_path: Path) -> None:
    done, bin_dir = run_script(tmp_path, "up", "--parallel", "2")
    assert done.returncode == 0, done.stderr
    assert pulumi_calls(bin_dir)[-1] == "up --parallel 2 --stack hemma"


def test_docker_context_never_reaches_the_providers(tmp_path: Path) -> None:
    """DOCKER_CONTEXT overrides the Docker provider's host: containers and builds
    could go to different daemons."""
    done, _ = run_script(
        tmp_path, env_extra={"DOCKER_CONTEXT": "laptop", "DOCKER_HOST": "unix:///x.sock"}
    )
    assert done.returncode == 0, done.stderr
    assert "DOCKER_CONTEXT=unset DOCKER_HOST=unset" in done.stdout


def test_a_secret_set_from_stdin_reaches_pulumi_whole(tmp_path: Path) -> None:
    """`scripts/pulumi config set --secret sshPrivateKey < key`: nothing before pulumi
    may read the key from stdin (an ssh without -n would)."""
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"
    done, bin_dir = run_script(tmp_path, "config", "set", "--secret", "sshPrivateKey", stdin=key)
    assert done.returncode == 0, done.stderr
    assert (bin_dir / "stdin").read_text() == key
    assert pulumi_calls(bin_dir)[-1] == "config set --secret sshPrivateKey --stack hemma"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test" in readme
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("bash scripts/test")


def test_the_local_stack_reaches_for_no_ssh(tmp_path: Path) -> None:
    done, bin_dir = run_script(
        tmp_path, "up", env_extra={"HEMMA_STACK": "local", "STUB_LOCAL": "1"}
    )
    assert done.returncode == 0, done.stderr
    assert pulumi_calls(bin_dir)[-1] == "up --parallel 4 --stack local"
    assert not (bin_dir / "ssh.log").exists(), "no ssh, no tunnel, no sudo check"


def restic(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("restic")
    assert binary, "restic is required (apt-get install restic)"
    env = {"PATH": os.environ["PATH"], "RESTIC_PASSWORD": "state-pw", "HOME": str(repository)}
    return subprocess.run(
        [binary, "--repo", str(repository), *args], capture_output=True, text=True, env=env
    )


def test_every_up_backs_the_state_up_with_restic(tmp_path: Path) -> None:
    """The state is the only record of the generated passwords (issue: the state has no
    backup); after up, a snapshot of it lands in the operator's repository."""
    repository, state = tmp_path / "repo", tmp_path / "state"
    assert restic(repository, "init").returncode == 0
    (state / ".pulumi" / "stacks" / "hemma").mkdir(parents=True)
    (state / ".pulumi" / "stacks" / "hemma" / "hemma.json").write_text('{"version": 3}')
    env = {
        "HEMMA_STATE_DIR": str(state),
        "HEMMA_STATE_REPOSITORY": str(repository),
        "RESTIC_PASSWORD": "state-pw",
    }
    done, _ = run_script(tmp_path, "preview", env_extra=env)
    assert done.returncode == 0, done.stderr
    listed = restic(repository, "snapshots", "--json", "--tag", "hemma-state")
    assert json.loads(listed.stdout) == [], "a preview changes no state: no snapshot"

    done, _ = run_script(tmp_path, "up", env_extra=env)
    assert done.returncode == 0, done.stderr
    assert f"state backed up to {repository}" in done.stdout
    snapshots = json.loads(restic(repository, "snapshots", "--json").stdout)
    assert len(snapshots) == 1 and snapshots[0]["tags"] == ["hemma-state"]
    restored = restic(repository, "dump", "latest", f"{state}/.pulumi/stacks/hemma/hemma.json")
    assert restored.stdout == '{"version": 3}'


def test_a_state_backup_that_fails_fails_the_command(tmp_path: Path) -> None:
    env = {
        "HEMMA_STATE_DIR": str(tmp_path / "state"),
        "HEMMA_STATE_REPOSITORY": str(tmp_path / "not-initialised"),
        "RESTIC_PASSWORD": "state-pw",
    }
    done, _ = run_script(tmp_path, "up", env_extra=env)
    assert done.returncode != 0
    assert "the state was NOT backed up" in done.stderr


def test_without_a_state_repository_up_says_the_state_was_not_backed_up(tmp_path: Path) -> None:
    done, _ = run_script(tmp_path, "up")
    assert done.returncode == 0, done.stderr
    assert "the state was not backed up: set HEMMA_STATE_REPOSITORY" in done.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("up", "--continue-on-error"), {}),
        (("up", "--yes", "--continue-on-error=true"), {}),
        (("up",), {"PULUMI_CONTINUE_ON_ERROR": "true"}),
        (("destroy",), {"PULUMI_CONTINUE_ON_ERROR": "1"}),
    ],
)
def test_continue_on_error_is_refused_before_pulumi_runs(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    """It would run the deletions after a failed start-first deploy: the serving copy
    would go, and the broken one stay."""
    done, bin_dir = run_script(tmp_path, *args, env_extra=env)
    assert done.returncode == 1
    assert "after a failed deploy it deletes the copy that still serves" in done.stderr
    assert not (bin_dir / "pulumi.log").exists(), "pulumi never ran"
    fine, _ = run_script(tmp_path, "up", env_extra={"PULUMI_CONTINUE_ON_ERROR": "false"})
    assert "refusing" not in fine.stderr
