"""A proxy container for the reload rehearsal: this machine's real nginx, in a
container on the private engine, laid out as nginx-proxy lays itself out.

- ``/etc/nginx``: an ``nginx.conf`` that includes ``conf.d/*.conf`` at http level
  (as nginx-proxy's does), the program's uploaded files, and the two volumes
  ``vhost.d`` and ``htpasswd``.
- ``/usr/local/bin/docker-gen``: a stand-in renderer, because no docker-gen binary
  can be had here (Debian has no package, and it is a Go program built from
  modules). It renders ``conf.d/default.conf`` as nginx-proxy 1.6's nginx.tmpl
  does for a host at ``/``: ``include vhost.d/<host>`` when that file exists, else
  ``vhost.d/default``, and ``auth_basic`` with ``htpasswd/<host>`` when that file
  exists. The hosts come from ``/etc/hemma-test/routes`` (one per line) instead of
  the containers' ``VIRTUAL_HOST``: the test writes it as the containers come and
  go. Each host proxies to a server in the same nginx that answers 200. It logs
  what docker-gen 0.14.0 logs (``Generated '...' from N containers``, ``Contents of
  ... did not change``), and, while ``/etc/hemma-test/cannot-list`` exists, what it
  does when it cannot list the containers: logs and exits 0 without rendering.
- ``/app/docker-entrypoint.sh``: for ``forego start -r``, as nginx-proxy's does, it
  sets up and starts the server (here: render, then nginx in the foreground).
- The nginx binary is Debian bookworm's, copied from this machine into the
  rehearsal's Debian bookworm base image, which has its libraries.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from tests.parts import images
from tests.parts.engine import Engine
from tests.rehearsal.standin import base_image

UPSTREAM_PORT = 8081
NGINX = Path("/usr/sbin/nginx")

NGINX_CONF = f"""user root;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    map $http_x_forwarded_proto $proxy_x_forwarded_proto {{ default $scheme; '' $scheme; }}
    map $http_x_forwarded_host $proxy_x_forwarded_host {{ default $host; '' $host; }}
    map $http_x_forwarded_port $proxy_x_forwarded_port {{ default $server_port; '' $server_port; }}
    map $scheme $proxy_x_forwarded_ssl {{ default off; https on; }}
    map $server_port $host_port {{ default :$server_port; 80 ''; 443 ''; }}
    map $http_upgrade $proxy_connection {{ default upgrade; '' close; }}
    include proxy.conf;
    server {{
        listen 127.0.0.1:{UPSTREAM_PORT};
        client_max_body_size 0;
        location / {{ return 200 "upstream ok\\n"; }}
    }}
    include conf.d/*.conf;
}}
"""

RENDERER = f"""#!/usr/bin/python3
# Stand-in for docker-gen: renders DEST (argv[2]) from /etc/hemma-test/routes.
import os, sys
root = "/etc/nginx"
dest = sys.argv[-1]
if os.path.exists("/etc/hemma-test/cannot-list"):
    print("Error listing containers: Cannot connect to the Docker daemon", file=sys.stderr)
    sys.exit(0)
try:
    hosts = open("/etc/hemma-test/routes").read().split()
except FileNotFoundError:
    hosts = []
blocks = []
for host in hosts:
    vhost = host if os.path.exists(f"{{root}}/vhost.d/{{host}}") else "default"
    auth = ""
    if os.path.exists(f"{{root}}/htpasswd/{{host}}"):
        auth = (f'auth_basic "Restricted {{host}}";\\n'
                f'        auth_basic_user_file htpasswd/{{host}};')
    blocks.append(f'''
server {{{{
    listen 80;
    server_name {{host}};
    include vhost.d/{{vhost}};
    location / {{{{
        {{auth}}
        proxy_pass http://127.0.0.1:{UPSTREAM_PORT};
    }}}}
}}}}''')
text = "".join(blocks) + "\\n"
old = open(dest).read() if os.path.exists(dest) else None
if old != text:
    with open(dest + ".tmp", "w") as f:
        f.write(text)
    os.rename(dest + ".tmp", dest)
    print(f"Generated '{{dest}}' from {{len(hosts)}} containers", file=sys.stderr)
else:
    print(f"Contents of {{dest}} did not change. Skipping notification ''", file=sys.stderr)
"""

ENTRYPOINT = """#!/bin/sh
# nginx-proxy's entrypoint, as far as the rehearsal needs it.
set -e
if [ "$*" = "forego start -r" ]; then
  mkdir -p /var/lib/nginx /etc/hemma-test
  touch /etc/hemma-test/routes
  docker-gen /app/nginx.tmpl /etc/nginx/conf.d/default.conf
  exec nginx -g 'daemon off;'
fi
exec "$@"
"""


def proxy_image(engine: Engine, uploaded: dict[str, str]) -> str:
    """An image with real nginx, the stand-in renderer and the program's static files
    (``uploaded``: path relative to /etc/nginx -> text)."""
    assert NGINX.exists(), "nginx is required (apt-get install nginx)"
    base = base_image(engine)
    digest = hashlib.sha256(
        NGINX.read_bytes() + NGINX_CONF.encode() + RENDERER.encode() + ENTRYPOINT.encode()
        + base.encode()
        + repr(sorted(uploaded.items())).encode()
    ).hexdigest()[:12]  # fmt: skip
    tag = f"hemma-test/proxy-nginx:{digest}"
    if images.image_exists(engine, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="hemma-proxy-image-") as context:
        root = Path(context) / "root"
        for path, text in {**uploaded, "nginx.conf": NGINX_CONF}.items():
            target = root / "etc/nginx" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        (root / "etc/nginx/conf.d").mkdir(parents=True, exist_ok=True)
        (root / "app").mkdir()
        (root / "app/nginx.tmpl").write_text("# rendered by the stand-in docker-gen\n")
        entrypoint = root / "app/docker-entrypoint.sh"
        entrypoint.write_text(ENTRYPOINT)
        entrypoint.chmod(0o755)
        (root / "usr/sbin").mkdir(parents=True)
        shutil.copy2(NGINX, root / "usr/sbin/nginx")
        (root / "usr/local/bin").mkdir(parents=True)
        renderer = root / "usr/local/bin/docker-gen"
        renderer.write_text(RENDERER)
        renderer.chmod(0o755)
        (Path(context) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY root/ /\n"
            'ENTRYPOINT ["/app/docker-entrypoint.sh"]\nCMD ["forego", "start", "-r"]\n'
        )
        engine.docker("build", "--quiet", "--tag", tag, context)
    return tag
