"""A real nginx for the tests: started on a config of the test's own, waited for
until it listens, and stopped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def start_nginx(root: Path, port: int, timeout: float = 10) -> subprocess.Popen[bytes]:
    """nginx with ``root/nginx.conf``, in the foreground, once it accepts on ``port``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    config = ["-p", str(root), "-c", str(root / "nginx.conf")]
    server = subprocess.Popen([nginx, *config, "-g", "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise AssertionError(server.stderr.read() if server.stderr else b"") from None
            if time.monotonic() >= deadline:
                server.kill()
                raise AssertionError("nginx did not start listening") from None
            time.sleep(0.02)


def stop_nginx(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)
