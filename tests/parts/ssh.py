"""An sshd on 127.0.0.1 standing in for the home server's SSH, for one test session.

It logs in a test user (``hemma-test``) by key only; the user is in the group
that owns the private engine's socket and has passwordless sudo, as the
operator account on the real host has.

How the user's sessions find the private engine: sshd's own ``SetEnv
DOCKER_HOST=unix://...`` in this server's config file. The server sets it for
every session, interactive or not (``ssh host docker ps``, and the
``docker system dial-stdio`` that ``DOCKER_HOST=ssh://`` runs), and needs
nothing from the client (unlike the client's SetEnv, which needs AcceptEnv). It
was chosen over ``PermitUserEnvironment`` with ``~/.ssh/environment`` because
that file lives in the user's home: it outlives a killed session, and two
sessions at once would overwrite each other's engine address. Nothing is
installed as ``docker`` and the machine's /var/run/docker.sock is left alone.

How test clients find the key and the pinned host key: ``ssh -F CONFIG``. The
OpenSSH client reads ``~/.ssh/config`` from the passwd entry's home, not from
``$HOME``, so a HOME for the docker CLI would not reach it; ``client_env()``
instead puts a directory first on PATH whose ``ssh`` runs ``/usr/bin/ssh -F
CONFIG``. The docker CLI's ssh helper runs ``ssh`` from PATH, so
``DOCKER_HOST=ssh://...`` with that environment works.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.parts.engine import SOCKET_GROUP, Engine
from tests.parts.tools import (
    free_port,
    remove_tree,
    require,
    require_root,
    run,
    terminate,
    wait_until,
)

USER = "hemma-test"
HOST = "127.0.0.1"
SUDOERS_DIR = Path("/etc/sudoers.d")
PRIVSEP_DIR = Path("/run/sshd")
READY_TIMEOUT = 15.0


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    key_path: Path
    host_key: str
    """The host's public key as ssh-keyscan prints it: ``ssh-ed25519 AAAA...``."""
    root: Path
    engine_host: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    sudoers: Path | None = None
    authorized_line: str = ""

    @property
    def private_key(self) -> str:
        return self.key_path.read_text()

    @property
    def public_key(self) -> str:
        return Path(f"{self.key_path}.pub").read_text().strip()

    @property
    def docker_host(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "sshd is not running"
        return self.process.pid

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def ssh_command(self, command: str) -> list[str]:
        return [
            "/usr/bin/ssh",
            "-F",
            str(self.ssh_config),
            "-o",
            "BatchMode=yes",
            "-p",
            str(self.port),
            f"{self.user}@{self.host}",
            "--",
            command,
        ]

    def ssh(
        self, command: str, input: str | None = None, *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` through the user's login shell on this server."""
        return run(self.ssh_command(command), check=check, input=input, timeout=timeout)

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a docker CLI (or Pulumi's docker provider) on the host that
        reaches the private engine over this server: DOCKER_HOST=ssh://..."""
        env = dict(os.environ if base is None else base)
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(name, None)
        env["PATH"] = f"{self.root / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["DOCKER_HOST"] = self.docker_host
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        env["DOCKER_BUILDKIT"] = "0"
        return env

    def docker(
        self, *args: str, client: str = "/usr/bin/docker", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI on the host, through DOCKER_HOST=ssh://."""
        return run([client, *args], check=check, env=self.client_env())

    def stop(self) -> None:
        """Kill sshd by PID, remove the sudoers file and the authorized key."""
        if self.process is not None:
            terminate(self.process, timeout=10)
            self.process = None
        if self.sudoers is not None:
            self.sudoers.unlink(missing_ok=True)
            self.sudoers = None
        if self.authorized_line:
            remove_authorized_key(self.user, self.authorized_line)
            self.authorized_line = ""
        remove_tree(self.root)


def ensure_user(user: str) -> pwd.struct_passwd:
    """Create the test user if missing; make it usable for key logins either way."""
    useradd = require("useradd", "passwd")
    usermod = require("usermod", "passwd")
    try:
        pwd.getpwnam(user)
    except KeyError:
        run([useradd, "--create-home", "--user-group", "--shell", "/bin/bash", user])
    run([usermod, "--shell", "/bin/bash", "--append", "--groups", SOCKET_GROUP, user])
    # "!" in the password field is a locked account, which sshd refuses even for
    # key logins when PAM is off; "*" is no password at all, but unlocked.
    run([usermod, "--password", "*", user])
    return pwd.getpwnam(user)


def authorize_key(account: pwd.struct_passwd, line: str) -> None:
    """Append ``line`` to the user's authorized_keys with the modes StrictModes wants:
    no part of the path writable by anyone but the user (or root)."""
    home = Path(account.pw_dir)
    home.mkdir(mode=0o755, exist_ok=True)
    os.chown(home, account.pw_uid, account.pw_gid)
    home.chmod(home.stat().st_mode & 0o755)
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(mode=0o700, exist_ok=True)
    os.chown(dot_ssh, account.pw_uid, account.pw_gid)
    dot_ssh.chmod(0o700)
    keys = dot_ssh / "authorized_keys"
    existing = keys.read_text() if keys.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    keys.write_text(existing + line + "\n")
    os.chown(keys, account.pw_uid, account.pw_gid)
    keys.chmod(0o600)


def remove_authorized_key(user: str, line: str) -> None:
    with contextlib.suppress(KeyError, OSError):
        keys = Path(pwd.getpwnam(user).pw_dir) / ".ssh" / "authorized_keys"
        kept = [k for k in keys.read_text().splitlines() if k.strip() != line.strip()]
        keys.write_text("".join(f"{k}\n" for k in kept))


def install_sudoers(user: str, name: str) -> Path:
    """NOPASSWD sudo for the user, keeping DOCKER_HOST so ``sudo docker`` reaches
    the same engine; checked with visudo before it goes live."""
    visudo = require("visudo", "sudo")
    require("sudo", "sudo")
    text = (
        "# The hemma test session's SSH user; removed when the session ends.\n"
        f'Defaults:{user} env_keep += "DOCKER_HOST"\n'
        f"{user} ALL=(ALL) NOPASSWD:ALL\n"
    )
    # sudo skips names with a dot, so the file is inert until the rename.
    staged = SUDOERS_DIR / f"{name}.new"
    staged.write_text(text)
    staged.chmod(0o440)
    try:
        run([visudo, "--check", "--file", str(staged)])
        target = SUDOERS_DIR / name
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def sshd_config(root: Path, port: int, user: str, docker_host: str) -> str:
    return f"""\
Port {port}
ListenAddress {HOST}
HostKey {root / "ssh_host_ed25519_key"}
PidFile {root / "sshd.pid"}
# No PAM: the test user has no password, and PAM would want a session stack this
# machine (no systemd, no logind) may not have.
UsePAM no
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {user}
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
SetEnv DOCKER_HOST={docker_host}
PrintMotd no
Subsystem sftp internal-sftp
LogLevel VERBOSE
# The docker CLI and Pulumi open many connections at once.
MaxStartups 100:30:200
MaxSessions 100
"""


def client_config(root: Path, port: int, user: str, key: Path) -> str:
    return f"""\
Host {HOST}
  Port {port}
  User {user}
  IdentityFile {key}
  IdentitiesOnly yes
  UserKnownHostsFile {root / "known_hosts"}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
"""


def banner(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as conn:
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def start_ssh_server(engine: Engine, user: str = USER) -> SshServer:
    """Start sshd for ``user``, whose sessions use ``engine`` as their docker."""
    require_root("the SSH server")
    sshd = require("sshd", "openssh-server")
    keygen = require("ssh-keygen", "openssh-client")
    require("ssh", "openssh-client")
    root = Path(tempfile.mkdtemp(prefix="hemma-sshd-", dir="/tmp"))
    port = free_port(HOST)
    host_key = root / "ssh_host_ed25519_key"
    client_key = root / "id_ed25519"
    server = SshServer(
        host=HOST,
        port=port,
        user=user,
        key_path=client_key,
        host_key="",
        root=root,
        engine_host=engine.host,
    )
    try:
        run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "hemma-test-host", "-f", str(host_key)])
        tag = f"hemma-test-{secrets.token_hex(4)}"
        run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", tag, "-f", str(client_key)])
        server.host_key = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
        (root / "known_hosts").write_text(f"[{HOST}]:{port} {server.host_key}\n")
        (root / "ssh_config").write_text(client_config(root, port, user, client_key))
        wrapper_dir = root / "bin"
        wrapper_dir.mkdir()
        wrapper = wrapper_dir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {root / "ssh_config"} "$@"\n')
        wrapper.chmod(0o755)

        account = ensure_user(user)
        server.authorized_line = server.public_key
        authorize_key(account, server.authorized_line)
        server.sudoers = install_sudoers(user, user)

        config = root / "sshd_config"
        config.write_text(sshd_config(root, port, user, engine.host))
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        run([sshd, "-t", "-f", str(config)])
        with server.log.open("ab") as log:
            # -D: sshd stays the child, so its PID is the Popen's; -e: log to the file.
            server.process = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = server.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"sshd exited with {process.returncode}:\n{log_tail(server)}")
            return banner(port)

        wait_until("sshd", listening, READY_TIMEOUT)
    except BaseException:
        server.stop()
        raise
    return server


def log_tail(server: SshServer, lines: int = 30) -> str:
    try:
        return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


__all__ = ["USER", "SshServer", "start_ssh_server"]
