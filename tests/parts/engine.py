"""A private Docker engine (Debian's docker.io, 20.10) for one test session.

It has its own socket, data root and exec root under one temp dir, and leaves the
machine's firewall and forwarding alone. Its default bridge is kept at
172.31.254.1/24 because ``--add-host NAME:host-gateway`` resolves to that
bridge's address: a server the tests bind there on the host is what a container
reaches as ``host.docker.internal``.

``start_second_engine()`` runs another one beside it, for a stack placed on two
hosts: its own bridge, lock and address pool, so the two never hand out the same
container addresses (see SECOND_ADDRESS_POOL).
"""

from __future__ import annotations

import fcntl
import grp
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.parts.tools import (
    CommandFailed,
    kill_pidfile,
    remove_tree,
    require,
    require_root,
    run,
    terminate,
    wait_until,
)

BRIDGE_IP = "172.31.254.1"
BRIDGE_CIDR = f"{BRIDGE_IP}/24"
SOCKET_GROUP = "docker"
BRIDGE = "docker0"
READY_TIMEOUT = 30.0
# A clean shutdown first stops every container at once, each with its own
# StopTimeout, 10 s when unset (moby v20.10.24 container.StopTimeout,
# daemon.shutdownContainer); the program declares none.
RESTART_TIMEOUT = 90.0
# Every private engine uses the one docker0 bridge and the one sudoers file of the
# SSH part; two sessions at once would hand out the same container addresses.
LOCK = Path("/tmp/hemma-dockerd.lock")

# The second engine: a bridge of its own (dockerd makes only docker0 itself), the
# next /24 down from docker0's, and its own lock, so it runs beside the first engine
# of this session or of another one.
SECOND_BRIDGE = "hemma-docker2"
SECOND_BRIDGE_IP = "172.31.253.1"
SECOND_BRIDGE_CIDR = f"{SECOND_BRIDGE_IP}/24"
SECOND_LOCK = Path("/tmp/hemma-dockerd-2.lock")
# User networks of the second engine. dockerd 20.10's built-in pools (172.17.0.0/16
# to 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s) leave out 172.16.0.0/16,
# so nothing the first engine hands out can overlap; and it is still inside
# 172.16.0.0/12, where the program expects Docker's networks (proxy.trustedNetwork).
# Both engines using the built-in pools would mostly work, as dockerd skips a pool
# that overlaps a route on the host, but two networks created at the same moment
# could still get the same subnet.
SECOND_NETWORKS = "172.16.0.0/17"
SECOND_ADDRESS_POOL = f"base={SECOND_NETWORKS},size=24"
SIDE_BRIDGE = "hemma-docker3"
SIDE_BRIDGE_CIDR = "172.31.252.1/24"
SIDE_LOCK = Path("/tmp/hemma-dockerd-3.lock")
SIDE_NETWORKS = "172.16.128.0/17"
"""The side engine's: the other half of what the first engine's pools leave out."""
SIDE_ADDRESS_POOL = f"base={SIDE_NETWORKS},size=24"


def docker_client() -> str:
    """The CLI from the engine's own package.

    A newer CLI earlier on PATH (e.g. one in /usr/local/bin) may want the
    buildx plugin for ``docker build``; the 20.10 CLI still has the classic builder
    and speaks the engine's API version natively.
    """
    packaged = Path("/usr/bin/docker")
    if packaged.exists():
        return str(packaged)
    return require("docker", "docker.io")


def ensure_socket_group() -> None:
    """docker.io creates the group; without it dockerd falls back to a root-only socket,
    and the SSH test user could not reach the engine."""
    try:
        grp.getgrnam(SOCKET_GROUP)
    except KeyError:
        run([require("groupadd", "passwd"), "--system", SOCKET_GROUP])


@dataclass
class Engine:
    """One private dockerd. The defaults are the first engine: dockerd makes docker0
    itself from ``--bip``. Any other ``bridge`` is one ``start()`` creates with
    ``bridge_cidr`` and ``stop()`` deletes: dockerd's ``--bridge=NAME`` wants an
    existing Linux bridge and refuses ``--bip`` beside it."""

    root: Path
    bridge: str = BRIDGE
    bridge_cidr: str = BRIDGE_CIDR
    lock_path: Path = LOCK
    # ``--default-address-pool`` values; none leaves dockerd's built-in pools.
    address_pools: tuple[str, ...] = ()
    storage_driver: str = "overlay2"
    client: str = field(default_factory=docker_client)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    created_bridge: bool = False
    lock: int | None = field(default=None, repr=False)

    @property
    def bridge_ip(self) -> str:
        """The default bridge's address: what ``--add-host NAME:host-gateway`` gives
        on this engine, and where a host server its containers reach listens."""
        return self.bridge_cidr.split("/")[0]

    @property
    def makes_bridge(self) -> bool:
        return self.bridge != BRIDGE

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, "engine is not running"
        return self.process.pid

    def env(self) -> dict[str, str]:
        """Environment for any docker client aimed at this engine only."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}
        }
        env["DOCKER_HOST"] = self.host
        # The caller's ~/.docker (contexts, credential helpers) must not leak in.
        env["DOCKER_CONFIG"] = str(self.root / "client-config")
        # The 20.10 CLI's BuildKit path needs a builder image from a registry.
        env["DOCKER_BUILDKIT"] = "0"
        return env

    def docker(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run([self.client, *args], check=check, input=input, env=self.env(), timeout=timeout)

    def inspect(self, name: str, template: str) -> str:
        return self.docker("inspect", "--format", template, name).stdout.strip()

    def wait_for(
        self,
        name: str,
        template: str,
        wanted: str,
        timeout: float = 60,
        *,
        exited_is_final: bool = True,
    ) -> None:
        """Poll ``docker inspect`` until ``template`` renders ``wanted`` (e.g. a health
        status). An exited container gives up at once unless a restart policy may
        still bring it back (``exited_is_final=False``)."""
        last = {"status": "", "value": ""}

        def reached() -> bool:
            done = self.docker(
                "inspect", "--format", "{{.State.Status}}\t" + template, name, check=False
            )
            status, _, value = done.stdout.strip().partition("\t")
            last.update(status=status or done.stderr.strip(), value=value)
            if value == wanted:
                return True
            if exited_is_final and status in {"exited", "dead"}:
                raise TimeoutError(f"{name} exited while waiting for {template} == {wanted}")
            return False

        try:
            wait_until(f"{name} {template} == {wanted}", reached, timeout, interval=0.2)
        except TimeoutError as e:
            logs = self.docker("logs", "--tail", "40", name, check=False)
            raise TimeoutError(
                f"{e}; last: {last}\n--- logs ---\n{logs.stdout}{logs.stderr}"
            ) from None

    def start(self) -> None:
        require_root("the Docker engine")
        require("dockerd", "docker.io")
        require("containerd", "containerd")
        require("runc", "runc")
        ensure_socket_group()
        self._take_lock()
        self.root.mkdir(parents=True, exist_ok=True)
        # Traversable, not listable: the SSH test user reaches the socket through it.
        self.root.chmod(0o711)
        if self.makes_bridge:
            self._make_bridge()
        else:
            self.created_bridge = not Path(f"/sys/class/net/{self.bridge}").exists()
        try:
            self._launch()
        except RuntimeError:
            if self.storage_driver != "overlay2" or "graphdriver" not in self._log_tail():
                raise
            # overlay2 cannot stack on some filesystems the temp dir may be on
            # (overlayfs itself, tmpfs without xattrs, some FUSE); vfs is slow and
            # copies every layer, but works anywhere.
            self.storage_driver = "vfs"
            self._launch()

    def _make_bridge(self) -> None:
        """The bridge ``--bridge`` names, with the address dockerd takes as its
        default network's gateway. One left by a killed session is ours (we hold its
        lock): it is made again, so its address is the one asked for."""
        ip = require("ip", "iproute2")
        if Path(f"/sys/class/net/{self.bridge}").exists():
            run([ip, "link", "delete", self.bridge])
        run([ip, "link", "add", self.bridge, "type", "bridge"])
        self.created_bridge = True
        run([ip, "addr", "add", self.bridge_cidr, "dev", self.bridge])
        run([ip, "link", "set", self.bridge, "up"])

    def _take_lock(self) -> None:
        """One private engine per lock file and machine (one bridge address, ports 80
        and 443): a second test session waits for the first one's engine to stop, up
        to HEMMA_ENGINE_WAIT seconds (default 1800), then fails naming the holder."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + float(os.environ.get("HEMMA_ENGINE_WAIT", "1800"))
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise RuntimeError(
                        f"another test session's Docker engine holds {self.lock_path} "
                        f"({holder}); one private engine per lock at a time"
                    ) from None
                if not said:
                    print(f"waiting for another test session's engine ({holder})", flush=True)
                    said = True
                time.sleep(2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, root {self.root}\n".encode(), 0)
        self.lock = fd

    def _command(self) -> list[str]:
        return [
            require("dockerd", "docker.io"),
            "--host",
            self.host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.pidfile),
            f"--storage-driver={self.storage_driver}",
            f"--group={SOCKET_GROUP}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            f"--bridge={self.bridge}" if self.makes_bridge else f"--bip={self.bridge_cidr}",
            *(f"--default-address-pool={pool}" for pool in self.address_pools),
            # Lookups of names that are not containers go to the bridge address,
            # where nothing answers DNS, instead of to the machine's resolver:
            # nothing a test starts sends traffic past this machine. On a user
            # network the embedded DNS then stays silent, so such a lookup fails
            # only after the client's resolver timeout (5 s x 2 by default).
            f"--dns={self.bridge_ip}",
            "--shutdown-timeout=2",
        ]

    def _launch(self) -> None:
        with self.log.open("ab") as log:
            log.write(f"--- dockerd start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            # Own session: a Ctrl-C at the terminal must not kill the engine before
            # the finalizers have removed its containers.
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {process.returncode}:\n{self._log_tail()}")
            done = self.docker("version", "--format", "{{.Server.Version}}", check=False)
            return done.returncode == 0

        try:
            wait_until("dockerd", answers, READY_TIMEOUT)
        except TimeoutError:
            self._terminate()
            raise RuntimeError(
                f"dockerd did not answer in {READY_TIMEOUT:.0f}s:\n{self._log_tail()}"
            ) from None

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _terminate(self, timeout: float = 30) -> bool:
        """True if dockerd had to be killed."""
        if self.process is None:
            return False
        killed = terminate(self.process, timeout=timeout)
        # Only after a SIGKILL would dockerd's own containerd still be up.
        kill_pidfile(self.root / "exec" / "containerd" / "containerd.pid")
        self.process = None
        return killed

    def restart(self) -> None:
        """Stop the daemon by PID (SIGTERM) and start it on the same data root.

        Containers are stopped the way a host reboot or a package upgrade stops
        them, so restart policies apply on the way back up. A daemon that has to be
        killed leaves its network endpoints behind (libnetwork cleans them up only on
        a clean shutdown), which is not what a reboot does: that fails here, with the
        daemon's log, instead of in a later removal.

        Only an engine without ``--default-address-pool``: one with it, started over
        its old state, deletes ``docker0`` whoever owns it (moby v20.10.24
        daemon/daemon_unix.go:879-886, ``removeDefaultBridgeInterface``), and that is
        the first engine's bridge.
        """
        if self.address_pools:
            raise RuntimeError(
                f"{self.bridge}: an engine with its own address pools deletes docker0, "
                "the first engine's bridge, when it restarts: restart the first engine only"
            )
        killed = self._terminate(timeout=RESTART_TIMEOUT)
        tail = self._log_tail()
        self._launch()
        if killed:
            raise RuntimeError(
                f"dockerd did not stop within {RESTART_TIMEOUT:.0f}s of SIGTERM:\n{tail}"
            )

    def stop(self) -> None:
        """Remove every container, stop the daemon by PID, remove its files."""
        if self.process is not None and self.process.poll() is None:
            ids = self.docker("ps", "--all", "--quiet", check=False).stdout.split()
            if ids:
                self.docker("rm", "--force", "--volumes", *ids, check=False)
            # Each user network is a bridge interface that outlives the daemon.
            self.docker("network", "prune", "--force", check=False)
        self._terminate()
        if self.created_bridge and Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
            self.created_bridge = False
        remove_tree(self.root)
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def start_engine(root: Path | None = None) -> Engine:
    """Start a private engine and return it; the caller stops it.

    The default root is directly under /tmp: unix socket paths are limited to 108
    bytes, and a pytest basetemp can be long enough to break containerd's.
    """
    return _started(Engine(root=root or _temp_root("hemma-dockerd-")))


def start_second_engine(root: Path | None = None) -> Engine:
    """Start a second private engine, which runs beside ``start_engine()``'s: the
    caller stops it.

    Its default bridge is SECOND_BRIDGE (172.31.253.1/24), made here and deleted by
    ``stop()``, so ``--add-host NAME:host-gateway`` on it resolves to 172.31.253.1,
    not to the first engine's 172.31.254.1: a host server for its containers
    listens there. Its user networks come from SECOND_ADDRESS_POOL
    (172.16.0.0/16 in /24s), apart from every subnet the first engine hands out.
    It has its own lock (SECOND_LOCK), so one runs per machine, whichever session
    holds the first. Ports its containers publish share the host with the first
    engine's: the two cannot both publish 127.0.0.1:80. ``docker info``'s ID is the
    same on both: dockerd 20.10 takes it from /etc/docker/key.json, one per machine.
    """
    return _started(
        Engine(
            root=root or _temp_root("hemma-dockerd2-"),
            bridge=SECOND_BRIDGE,
            bridge_cidr=SECOND_BRIDGE_CIDR,
            lock_path=SECOND_LOCK,
            address_pools=(SECOND_ADDRESS_POOL,),
        )
    )


def start_side_engine(root: Path | None = None) -> Engine:
    """Start a third private engine, for the modules that need no sshd, no host port
    80 or 443 and no first-engine address: they run on it in a second xdist group,
    beside the first engine's (tests/conftest.py). Its own bridge (172.31.252.1/24),
    user networks (172.16.128.0/17) and lock, as the second engine has."""
    return _started(
        Engine(
            root=root or _temp_root("hemma-dockerd3-"),
            bridge=SIDE_BRIDGE,
            bridge_cidr=SIDE_BRIDGE_CIDR,
            lock_path=SIDE_LOCK,
            address_pools=(SIDE_ADDRESS_POOL,),
        )
    )


def _temp_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _started(engine: Engine) -> Engine:
    try:
        engine.start()
    except BaseException:
        engine.stop()
        raise
    return engine


__all__ = [
    "BRIDGE_IP",
    "SECOND_BRIDGE_IP",
    "SECOND_NETWORKS",
    "CommandFailed",
    "Engine",
    "start_engine",
    "start_second_engine",
]
