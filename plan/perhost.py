"""nginx-proxy's per-host files in the plan, file by file.

They travel on the ``proxy-reload`` and ``proxy-settle`` steps' stdin, one secret
input, because the htpasswd lines are secret: whole, they would show only as one
new hash for any route, body-size or basic-auth edit. Here each file is shown under
its path, in the uploads' shape (``file``, ``content``) so the diff compares them
line by line: a ``vhost.d`` file as it is, an htpasswd file with each password hash
masked on its own (``USER:[secret:HASH]``), so a user added or removed still shows.
The plan's scrub still runs over the result.

The reader is the planner's own, not the proxy's: ``scripts/plan diff REV`` runs
this planner over an older revision's ``components/``, which need not have it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

STEPS = frozenset({"proxy-reload", "proxy-settle"})
"""The steps that carry the files (components/proxy/stack.py)."""
DIRECTORIES = ("vhost.d", "htpasswd")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def manifest_files(text: str) -> dict[str, str] | None:
    """The files of a manifest (``path base64`` lines: path -> text), or None when
    ``text`` is not one."""
    files: dict[str, str] = {}
    for line in text.splitlines():
        path, space, encoded = line.partition(" ")
        directory, _, name = path.partition("/")
        if not space or directory not in DIRECTORIES or not _NAME.fullmatch(name):
            return None
        try:
            files[path] = base64.b64decode(encoded, validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
    return files or None


def per_host_files(
    name: str, stdin: Any, mark: Callable[[Any], str]
) -> list[dict[str, str]] | None:
    """The files on the stdin of the step ``name``, each password hash masked by
    ``mark``; None for any other step, or a stdin that is no manifest."""
    files = manifest_files(stdin) if name in STEPS and isinstance(stdin, str) else None
    if files is None:
        return None
    shown = []
    for path, text in sorted(files.items()):
        if path.startswith("htpasswd/"):
            lines = []
            for line in text.splitlines():
                user, colon, secret = line.partition(":")
                lines.append(f"{user}:{mark(secret)}" if colon else mark(line))
            text = "\n".join(lines) + "\n"
        shown.append({"file": path, "content": text})
    return shown
