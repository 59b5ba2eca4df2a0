"""htpasswd files for nginx-proxy's per-host basic auth.

Apache's MD5-crypt (``$apr1$``) is the one hash every nginx build accepts;
bcrypt depends on the image's libc.
"""

from __future__ import annotations

from hashlib import md5

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
