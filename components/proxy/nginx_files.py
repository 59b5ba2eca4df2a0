"""Files nginx-proxy reads at render time, as pure functions of config.

nginx-proxy's nginx.tmpl (1.6.0 to 1.11.6) includes ``/etc/nginx/vhost.d/<host>`` at server
level, and only falls back to ``vhost.d/default`` when no per-host file exists.
So every known host gets its own file that pulls in the shared edge hardening
and sets its body limit, and ``default`` does the same for hosts nobody
declared. A route on a path (``VIRTUAL_PATH``) gets its own location file,
``vhost.d/<host>_<sha1(path)>_location``, which the template includes inside
that path's location block before ``<host>_location`` and ``default_location``.

A host no container declares would get the template's fallback server, which
answers 503 (``server_name _; return 503``, no ``default_server``). An explicit
default server in ``conf.d`` takes precedence and drops such requests instead.

Include paths are relative: nginx resolves them against the directory of its
main config file, which is ``/etc/nginx`` in the proxy container and a
temporary directory in the tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from components.config.stack import StackConfig
from components.model.app import App

EDGE_HARDENING_PATH = "hemma/edge-hardening.conf"
"""Relative to /etc/nginx."""

SCANNER_METHODS = ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK")
SCANNER_LOCATIONS = (
    r"/\.(?:env|git)",  # /.env, /.env.local, /.git/config
    r"/wp-",  # /wp-login.php, /wp-admin/, /wp-content/...
    r"\.php(?:/|$)",  # /index.php, /x.php/y
    r"/cgi-bin(?:/|$)",
)


PROXY_CONF_PATH = "proxy.conf"
"""/etc/nginx/proxy.conf: when it exists, nginx-proxy's nginx.tmpl (1.6.0 to 1.11.6) includes it at
http level instead of its own proxy headers (``{{ if (exists "/etc/nginx/proxy.conf") }}``)."""

UNKNOWN_HOSTS_PATH = "conf.d/hemma-unknown-hosts.conf"
"""Relative to /etc/nginx; nginx-proxy's nginx.conf includes conf.d/*.conf at http level."""


@dataclass(frozen=True)
class HostPolicy:
    """What the edge enforces for one public hostname."""

    hostname: str
    max_body_size: str
    basic_auth: bool = False
    paths: Mapping[str, str] = field(default_factory=dict)
    """``VIRTUAL_PATH`` -> its own request-size limit."""


def location_file(hostname: str, path: str) -> str:
    """The per-path location file nginx-proxy looks for (sha1 of the literal path)."""
    return f"vhost.d/{hostname}_{hashlib.sha1(path.encode()).hexdigest()}_location"


def unknown_hosts() -> str:
    """The default server: a request for a host nobody declared gets no answer."""
    return (
        "# Hosts no container declares: close the connection (HTTP) or refuse the\n"
        "# TLS handshake (HTTPS) instead of nginx-proxy's fallback 503.\n"
        "server {\n"
        "    listen 80 default_server;\n"
        "    server_name _;\n"
        "    return 444;\n"
        "}\n"
        "server {\n"
        "    listen 443 ssl default_server;\n"
        "    server_name _;\n"
        "    ssl_reject_handshake on;\n"
        "}\n"
    )


def proxy_conf() -> str:
    """nginx-proxy's own proxy headers (1.6.0 to 1.11.6), but X-Forwarded-For is the
    client's address alone.

    The template appends the client to any X-Forwarded-For the client sent
    (``$proxy_add_x_forwarded_for``), whatever TRUST_DOWNSTREAM_PROXY says. An app
    that trusts the proxy's network takes the rightmost untrusted address, which is
    the real one for IPv4; a client over IPv6 reaches nginx through Docker's
    userland proxy, from the bridge gateway, a trusted address, and the app would
    take the address the client wrote. Nothing stands in front of nginx-proxy, so
    no X-Forwarded-For it receives is worth keeping. The other headers and the
    variables they use are the template's own (its maps, rendered there).
    """
    return (
        "# nginx-proxy is the edge: the client's address is the only one forwarded.\n"
        "proxy_http_version 1.1;\n"
        "proxy_set_header Host $host$host_port;\n"
        "proxy_set_header Upgrade $http_upgrade;\n"
        "proxy_set_header Connection $proxy_connection;\n"
        "proxy_set_header X-Real-IP $remote_addr;\n"
        "proxy_set_header X-Forwarded-For $remote_addr;\n"
        "proxy_set_header X-Forwarded-Host $proxy_x_forwarded_host;\n"
        "proxy_set_header X-Forwarded-Proto $proxy_x_forwarded_proto;\n"
        "proxy_set_header X-Forwarded-Ssl $proxy_x_forwarded_ssl;\n"
        "proxy_set_header X-Forwarded-Port $proxy_x_forwarded_port;\n"
        "proxy_set_header X-Original-URI $request_uri;\n"
        "# Mitigate httpoxy (as the template does).\n"
        'proxy_set_header Proxy "";\n'
    )


def edge_hardening() -> str:
    """Server-level rules that drop scanner traffic without an answer (444)."""
    lines = [
        "# Scanner traffic is dropped: 444 closes the connection without a response.",
        f"if ($request_method ~ ^({'|'.join(SCANNER_METHODS)})$) {{",
        "    return 444;",
        "}",
    ]
    lines += [f"location ~* {pattern} {{\n    return 444;\n}}" for pattern in SCANNER_LOCATIONS]
    return "\n".join(lines) + "\n"


def vhost_server_snippet(max_body_size: str) -> str:
    """``vhost.d/<host>``: edge hardening plus the host's request-size limit."""
    return f"include {EDGE_HARDENING_PATH};\nclient_max_body_size {max_body_size};\n"


def static_files() -> dict[str, str]:
    """The files no config value changes, by path relative to /etc/nginx: uploaded onto
    the proxy container."""
    return {
        EDGE_HARDENING_PATH: edge_hardening(),
        UNKNOWN_HOSTS_PATH: unknown_hosts(),
        PROXY_CONF_PATH: proxy_conf(),
    }


def host_files(policies: list[HostPolicy], default_max_body_size: str) -> dict[str, str]:
    """The per-host files, by path relative to /etc/nginx (``vhost.d/...``): written into
    the proxy's vhost.d volume by its reload step, never uploaded, so that a route edit
    reloads nginx-proxy instead of replacing it."""
    files = {"vhost.d/default": vhost_server_snippet(default_max_body_size)}
    for policy in policies:
        files[f"vhost.d/{policy.hostname}"] = vhost_server_snippet(policy.max_body_size)
        for path, size in sorted(policy.paths.items()):
            files[location_file(policy.hostname, path)] = f"client_max_body_size {size};\n"
    return files


def proxy_files(policies: list[HostPolicy], default_max_body_size: str) -> dict[str, str]:
    """Every non-secret file nginx-proxy reads, by path relative to /etc/nginx."""
    return {**static_files(), **host_files(policies, default_max_body_size)}


def host_policies(config: StackConfig, catalog: tuple[App, ...]) -> list[HostPolicy]:
    """What the edge enforces for every routed hostname in the catalog."""
    default = config.proxy.default_max_body_size
    hosts: dict[str, HostPolicy] = {}
    for app in catalog:
        for route in app.routes:
            hostname = config.hostnames[route.id]
            policy = hosts.get(hostname, HostPolicy(hostname=hostname, max_body_size=default))
            size = route.max_body_size or default
            if route.path == "/":
                policy = HostPolicy(hostname, size, route.basic_auth, policy.paths)
            else:
                paths = {**policy.paths, route.path: size}
                policy = HostPolicy(hostname, policy.max_body_size, policy.basic_auth, paths)
            hosts[hostname] = policy
    return list(hosts.values())
