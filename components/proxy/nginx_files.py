"""Files nginx-proxy reads at render time, as pure functions of config.

nginx-proxy includes ``/etc/nginx/vhost.d/<host>`` at server level, and only
falls back to ``vhost.d/default`` when no per-host file exists. So every known
host gets its own file that pulls in the shared edge hardening and sets its
body limit, and ``default`` does the same for hosts nobody declared.

Include paths are relative: nginx resolves them against the directory of its
main config file, which is ``/etc/nginx`` in the proxy container and a
temporary directory in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class HostPolicy:
    """What the edge enforces for one public hostname."""

    hostname: str
    max_body_size: str
    basic_auth: bool = False


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


def proxy_files(policies: list[HostPolicy], default_max_body_size: str) -> dict[str, str]:
    """Every non-secret file for the proxy container, by path relative to /etc/nginx."""
    files = {
        EDGE_HARDENING_PATH: edge_hardening(),
        "vhost.d/default": vhost_server_snippet(default_max_body_size),
    }
    for policy in policies:
        files[f"vhost.d/{policy.hostname}"] = vhost_server_snippet(policy.max_body_size)
    return files


def host_policies(config: StackConfig, catalog: tuple[App, ...]) -> list[HostPolicy]:
    """What the edge enforces for every routed hostname in the catalog."""
    return [
        HostPolicy(
            hostname=config.hostnames[route.id],
            max_body_size=route.max_body_size or config.proxy.default_max_body_size,
            basic_auth=route.basic_auth,
        )
        for app in catalog
        for route in app.routes
    ]
