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
from hashlib import md5

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


_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, count: int) -> str:
    out = ""
    for _ in range(count):
        out += _ITOA64[value & 0x3F]
        value >>= 6
    return out


def apr1(password: str, salt: str) -> str:
    """Apache's MD5-crypt (``$apr1$``), the htpasswd hash every nginx build accepts."""
    if not salt or len(salt) > 8 or any(c not in _ITOA64 for c in salt):
        raise ValueError("apr1 salt must be 1-8 characters of [./0-9A-Za-z]")
    pw, salted, magic = password.encode(), salt.encode(), b"$apr1$"
    alternate = md5(pw + salted + pw).digest()
    ctx = pw + magic + salted
    for remaining in range(len(pw), 0, -16):
        ctx += alternate[: min(16, remaining)]
    bits = len(pw)
    while bits:
        ctx += b"\x00" if bits & 1 else pw[:1]
        bits >>= 1
    digest = md5(ctx).digest()
    for round_ in range(1000):
        block = pw if round_ & 1 else digest
        if round_ % 3:
            block += salted
        if round_ % 7:
            block += pw
        block += digest if round_ & 1 else pw
        digest = md5(block).digest()
    d = digest
    encoded = (
        _to64((d[0] << 16) | (d[6] << 8) | d[12], 4)
        + _to64((d[1] << 16) | (d[7] << 8) | d[13], 4)
        + _to64((d[2] << 16) | (d[8] << 8) | d[14], 4)
        + _to64((d[3] << 16) | (d[9] << 8) | d[15], 4)
        + _to64((d[4] << 16) | (d[10] << 8) | d[5], 4)
        + _to64(d[11], 2)
    )
    return f"$apr1${salt}${encoded}"


def htpasswd(user: str, password: str, salt: str) -> str:
    """One ``htpasswd/<host>`` file with a single user."""
    return f"{user}:{apr1(password, salt)}\n"
