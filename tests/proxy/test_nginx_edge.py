"""The proxy's generated files, served by a real nginx on 127.0.0.1.

The files are taken from what the program hands nginx-proxy: the uploads onto
its container and the per-host files on its reload step's stdin. The server
blocks around them are written the way nginx-proxy 1.6 renders a host:
``vhost.d/<host>`` (or ``vhost.d/default``) included at server level, and
``auth_basic`` with ``htpasswd/<host>`` in ``location /`` when that file exists.
A second server stands in for the app container.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pytest

from tests.harness import Program, run_program
from tests.proxy.files import nginx_files
from tests.proxy.nginx import start_nginx, stop_nginx

pytestmark = pytest.mark.tools

PROTECTED = "prometheus.hemma.hule.education"
OPEN = "skriptoteket.hule.education"
UNDECLARED = "unknown.hule.education"
TEN_MEGABYTES = 10 * 1024 * 1024


NGINX_CONF = Template(
    """$user
worker_processes 1;
pid $root/nginx.pid;
error_log $root/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $root/body;
    proxy_temp_path $root/proxy;
    fastcgi_temp_path $root/fastcgi;
    uwsgi_temp_path $root/uwsgi;
    scgi_temp_path $root/scgi;
$template_maps
    include proxy.conf;
    server {
        listen 127.0.0.1:$upstream;
        location / { return 200 "upstream ok\\n"; }
        location = /headers {
            return 200 "xff=$$http_x_forwarded_for proto=$$http_x_forwarded_proto\\n";
        }
    }
$servers
}
"""
)
TEMPLATE_MAPS = """
    map $http_x_forwarded_proto $proxy_x_forwarded_proto { default $scheme; '' $scheme; }
    map $http_x_forwarded_host $proxy_x_forwarded_host { default $host; '' $host; }
    map $http_x_forwarded_port $proxy_x_forwarded_port { default $server_port; '' $server_port; }
    map $scheme $proxy_x_forwarded_ssl { default off; https on; }
    map $server_port $host_port { default :$server_port; 80 ''; 443 ''; }
    map $http_upgrade $proxy_connection { default upgrade; '' $proxy_connection_noupgrade; }
    map $upstream_keepalive $proxy_connection_noupgrade { default close; true ''; }
    map "" $upstream_keepalive { default false; }
"""
"""The maps nginx-proxy 1.6.0's nginx.tmpl renders at http level with
TRUST_DOWNSTREAM_PROXY=false, which the proxy.conf the program uploads relies on."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Edge:
    port: int
    program: Program
    root: Path

    def request(self, host: str, raw_head: str, body: bytes = b"", whole: bool = True) -> bytes:
        """Send one request; return the raw response (b"" when nginx drops it).

        With ``whole=False`` it returns once the status line is in: a 413 is sent
        before nginx lingers for the body that never comes.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(raw_head.replace("{host}", host).encode() + body)
            chunks = []
            while True:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if not whole and b"\r\n" in b"".join(chunks):
                    break
        return b"".join(chunks)

    def get(self, host: str, path: str, headers: str = "", method: str = "GET") -> bytes:
        return self.request(
            host,
            f"{method} {path} HTTP/1.1\r\nHost: {{host}}\r\n{headers}Connection: close\r\n\r\n",
        )


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def server_block(host: str, port: int, upstream: int, root: Path) -> str:
    vhost = host if (root / "vhost.d" / host).exists() else "default"
    auth = ""
    if (root / "htpasswd" / host).exists():
        auth = f'auth_basic "Restricted {host}";\n        auth_basic_user_file htpasswd/{host};'
    return f"""
    server {{
        listen 127.0.0.1:{port};
        server_name {host};
        include vhost.d/{vhost};
        location / {{
            {auth}
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is required (apt-get install nginx)"
    program = run_program()
    root = tmp_path_factory.mktemp("nginx")
    for path, text in nginx_files(program).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    port, upstream = free_port(), free_port()
    hosts = [*program.outputs["proxyPublicHosts"], UNDECLARED]
    user = "user root root;" if os.geteuid() == 0 else ""
    servers = "".join(server_block(h, port, upstream, root) for h in hosts)
    (root / "nginx.conf").write_text(
        NGINX_CONF.substitute(
            user=user, root=root, upstream=upstream, servers=servers, template_maps=TEMPLATE_MAPS
        )
    )
    config = ["-p", str(root), "-c", str(root / "nginx.conf")]
    checked = subprocess.run([nginx, "-t", *config], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    server = start_nginx(root, port)
    yield Edge(port=port, program=program, root=root)
    stop_nginx(server)


def basic(user: str, password: str) -> str:
    import base64

    return (
        "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() + "\r\n"
    )


def test_nginx_accepts_the_generated_files(edge: Edge) -> None:
    # The fixture has already run `nginx -t` on them; here, the server answers.
    assert status(edge.get(OPEN, "/")) == 200


@pytest.mark.parametrize(
    "path",
    [
        "/.env",
        "/.env.production",
        "/.git/config",
        "/wp-login.php",
        "/wp-admin/",
        "/index.php",
        "/app/x.php/y",
        "/cgi-bin/test.sh",
        "/static/../.git/HEAD",
    ],
)
@pytest.mark.parametrize("host", [OPEN, PROTECTED, UNDECLARED])
def test_scanner_paths_are_dropped_without_an_answer(edge: Edge, host: str, path: str) -> None:
    assert edge.get(host, path) == b""


@pytest.mark.parametrize("method", ["PROPFIND", "MKCOL", "LOCK"])
def test_webdav_methods_are_dropped(edge: Edge, method: str) -> None:
    assert edge.get(OPEN, "/", method=method) == b""


def test_ordinary_paths_still_reach_the_app(edge: Edge) -> None:
    for path in ["/", "/healthz", "/static/app.js", "/environment", "/wp"]:
        response = edge.get(OPEN, path)
        assert status(response) == 200, path
        assert response.endswith(b"upstream ok\n")


def test_basic_auth_lets_the_generated_password_in_and_nobody_else(edge: Edge) -> None:
    credentials = edge.program.outputs["basicAuthCredentials"][PROTECTED]
    user, password = credentials["username"], credentials["password"]
    assert status(edge.get(PROTECTED, "/")) == 401
    assert status(edge.get(PROTECTED, "/", basic(user, password + "x"))) == 401
    assert status(edge.get(PROTECTED, "/", basic("root", password))) == 401
    assert status(edge.get(PROTECTED, "/", basic(user, password))) == 200


def test_hosts_without_basic_auth_ask_for_none(edge: Edge) -> None:
    assert status(edge.get(OPEN, "/")) == 200


@pytest.mark.parametrize("host", [OPEN, UNDECLARED])
def test_a_body_over_the_limit_gets_413(edge: Edge, host: str) -> None:
    head = (
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Length: {TEN_MEGABYTES + 1}\r\n\r\n"
    )
    assert status(edge.request(host, head, whole=False)) == 413


def test_a_body_within_the_limit_passes(edge: Edge) -> None:
    body = b"x" * (64 * 1024)
    head = (
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    assert status(edge.request(OPEN, head, body)) == 200


def test_a_client_cannot_choose_the_forwarded_address_or_scheme(edge: Edge) -> None:
    """nginx-proxy's own template would append the client to an X-Forwarded-For the
    client sent; the uploaded proxy.conf forwards the client's address alone."""
    head = (
        "GET /headers HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 6.6.6.6\r\n"
        "X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
    )
    response = edge.request(OPEN, head)
    assert status(response) == 200
    assert response.endswith(b"xff=127.0.0.1 proto=http\n"), response
