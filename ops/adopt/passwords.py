"""Passwords in the adoption: the generated admin password from the stack export,
checking a password against PostgreSQL's stored verifier, and the old passwords
that the hand-made containers still carry in their env.

Nothing here prints a password. The stack export (``pulumi stack export
--show-secrets``) writes a secret output as ``{SIG_KEY: SECRET_SIG, "plaintext":
"<the value as JSON>"}`` (pulumi pkg/resource/stack/deployment.go,
SerializePropertyValue; the two constants are sdk/go/common/resource/sig/sig.go's
``Key`` and ``Secret``); without --show-secrets it carries ``ciphertext`` instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ops.adopt.plan import ADMIN_PASSWORD, PASSWORD
from ops.adopt.shell import Refused

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
GENERATED = re.compile(r"[A-Za-z0-9]{40}")
"""What the program generates (components/foundation/secrets.py): 40 letters and digits."""

_SCRAM = re.compile(
    r"SCRAM-SHA-256\$(?P<iterations>[0-9]{1,7}):(?P<salt>[A-Za-z0-9+/]+={0,2})"
    r"\$(?P<stored>[A-Za-z0-9+/]+={0,2}):(?P<server>[A-Za-z0-9+/]+={0,2})"
)
_MD5 = re.compile(r"md5[0-9a-f]{32}")


def _json_text(text: str) -> str:
    """A wrapper may print a status line before Pulumi's JSON."""
    if text.lstrip().startswith("{"):
        return text
    start = text.find("\n{")
    return text[start + 1 :] if start >= 0 else text


def export_resources(text: str) -> list[Any]:
    """The resources of a stack export (``deployment.resources``)."""
    try:
        data = json.loads(_json_text(text))
    except json.JSONDecodeError as error:
        raise Refused(f"the stack export is not JSON: {error.msg}") from None
    deployment = data.get("deployment") if isinstance(data, dict) else None
    resources = deployment.get("resources") if isinstance(deployment, dict) else None
    return resources if isinstance(resources, list) else []


def export_password(text: str, name: str = ADMIN_PASSWORD) -> str:
    """The ``result`` of the RandomPassword ``name`` in a stack export."""
    resources = export_resources(text)
    found = [
        r
        for r in resources
        if isinstance(r, dict)
        and r.get("type") == PASSWORD
        and str(r.get("urn", "")).endswith(f"::{name}")
    ]
    if not found:
        raise Refused(
            f"the stack has no {name} yet: run `scripts/adopt prepare --run` first "
            "(the targeted up creates it)"
        )
    if len(found) > 1:
        raise Refused(f"the stack export holds {len(found)} resources named {name}")
    outputs = found[0].get("outputs")
    value = outputs.get("result") if isinstance(outputs, dict) else None
    if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
        if "plaintext" not in value:
            raise Refused(f"the export shows {name} encrypted: read it with --show-secrets")
        try:
            value = json.loads(value["plaintext"])
        except (TypeError, json.JSONDecodeError):
            raise Refused(f"the export's plaintext of {name} is not JSON") from None
    if not isinstance(value, str) or not GENERATED.fullmatch(value):
        shape = "empty" if not value else "not 40 letters and digits"
        raise Refused(f"{name} in the stack export is {shape}: refusing to set it")
    return value


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def verifier_matches(verifier: str, password: str, role: str) -> bool:
    """Whether ``password`` is the one behind ``pg_authid.rolpassword`` of ``role``.

    SCRAM-SHA-256 (RFC 5802 and RFC 7677, as PostgreSQL stores it:
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, base64), or the
    older ``md5`` + md5(password + role name).
    """
    scram = _SCRAM.fullmatch(verifier)
    if scram is not None:
        try:
            salt, stored, server = (_b64(scram[k]) for k in ("salt", "stored", "server"))
        except (binascii.Error, ValueError):
            return False
        iterations = int(scram["iterations"])
        if iterations < 1:
            return False
        # PostgreSQL SASLprep-normalizes the password when it can; ASCII is unchanged.
        for candidate in dict.fromkeys([password, unicodedata.normalize("NFKC", password)]):
            salted = hashlib.pbkdf2_hmac("sha256", candidate.encode(), salt, iterations)
            client_key = hmac.new(salted, b"Client Key", "sha256").digest()
            server_key = hmac.new(salted, b"Server Key", "sha256").digest()
            if hmac.compare_digest(hashlib.sha256(client_key).digest(), stored) and (
                hmac.compare_digest(server_key, server)
            ):
                return True
        return False
    if _MD5.fullmatch(verifier):
        digest = "md5" + hashlib.md5((password + role).encode()).hexdigest()
        return hmac.compare_digest(digest, verifier)
    return False


def scram_verifier(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL would store for ``password``.

    ``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`` stores such a string as it is
    (PostgreSQL, "ALTER ROLE": a password already in SCRAM form is taken as
    encrypted), so the statement, which the server may write to its log on an
    error or under ``log_statement``, never holds the password itself. ASCII only:
    for other passwords PostgreSQL's SASLprep would have to be copied exactly.
    """
    if not password.isascii():
        raise ValueError("only an ASCII password gets a verifier made here")
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server_key)}"


ROLE = "postgresql:index/role:Role"


def export_role_passwords(text: str) -> dict[str, str]:
    """Role name -> the password the stack's state holds for it (none before the
    first full up). Only generated passwords are taken; anything else is refused."""
    resources = export_resources(text)
    found: dict[str, str] = {}
    for r in resources:
        if not isinstance(r, dict) or r.get("type") != ROLE:
            continue
        outputs = r.get("outputs")
        if not isinstance(outputs, dict):
            outputs = {}
        role, value = outputs.get("name"), outputs.get("password")
        if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG:
            try:
                value = json.loads(value.get("plaintext", "null"))
            except (TypeError, json.JSONDecodeError):
                value = None
        if not isinstance(role, str) or not isinstance(value, str):
            raise Refused(
                "a role in the stack export has no readable name or password "
                f"(read it with --show-secrets): {r.get('urn', '')!s:.80}"
            )
        if not GENERATED.fullmatch(value):
            raise Refused(f"the stack's password of role {role!s:.40} is not 40 letters and digits")
        found[role] = value
    return found


# --- the old passwords in the hand-made containers' env ------------------------

_URL = re.compile(r"postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?://", re.I)
_PAIR_PREFIX = re.compile(r"(?:^|_)(?:DB|PG|POSTGRES|DATABASE)_?$")
"""``HULEEDU_DB_USER``/``HULEEDU_DB_PASSWORD``, ``POSTGRES_USER``/..., ``PGUSER``/...:
a user and a password that belong to a database (not ``SMTP_USERNAME``)."""


@dataclass(frozen=True)
class Login:
    role: str
    password: str
    source: str
    """``CONTAINER: KEY``, for the report (never the value)."""


def env_logins(
    container: str, env: Iterable[str], hosts: set[str], default_user: str | None = None
) -> list[Login]:
    """Every login to shared-postgres in one container's env.

    ``postgresql[+driver]://user:password@HOST...`` values whose HOST is in
    ``hosts``, and ``PREFIX_USER``/``PREFIX_PASSWORD`` pairs of a database;
    ``default_user`` is the user of a lone ``POSTGRES_PASSWORD`` (the server's own).
    """
    values = dict(e.split("=", 1) for e in env if "=" in e)
    found = []
    for key, value in values.items():
        if not _URL.match(value):
            continue
        try:
            parsed = urllib.parse.urlsplit(value)
            host = parsed.hostname
        except ValueError:
            continue
        if parsed.username and parsed.password is not None and host in hosts:
            found.append(
                Login(
                    urllib.parse.unquote(parsed.username),
                    urllib.parse.unquote(parsed.password),
                    f"{container}: {key}",
                )
            )
    users: dict[str, tuple[str, str]] = {}
    passwords: dict[str, tuple[str, str]] = {}
    for key, value in values.items():
        for suffix, into in (("USERNAME", users), ("USER", users), ("PASSWORD", passwords)):
            if key.endswith(suffix) and _PAIR_PREFIX.search(key.removesuffix(suffix)):
                into.setdefault(key.removesuffix(suffix), (key, value))
                break
    if default_user is not None and "POSTGRES_" in passwords:
        users.setdefault("POSTGRES_", ("POSTGRES_USER", default_user))
    for prefix in sorted(users.keys() & passwords.keys()):
        (user_key, user), (password_key, password) = users[prefix], passwords[prefix]
        if user:
            found.append(Login(user, password, f"{container}: {user_key}/{password_key}"))
    return found


@dataclass(frozen=True)
class OldPasswords:
    found: dict[str, Login]
    conflicting: dict[str, list[str]]
    """Role -> the sources that disagree about its password."""
    missing: list[str]


def old_passwords(roles: Iterable[str], logins: Iterable[Login]) -> OldPasswords:
    by_role: dict[str, list[Login]] = {}
    for login in logins:
        by_role.setdefault(login.role, []).append(login)
    found, conflicting, missing = {}, {}, []
    for role in roles:
        seen = by_role.get(role, [])
        if not seen:
            missing.append(role)
        elif len({login.password for login in seen}) > 1:
            conflicting[role] = [login.source for login in seen]
        else:
            found[role] = seen[0]
    return OldPasswords(found, conflicting, missing)
