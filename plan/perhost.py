"""nginx-proxy's per-host files in the plan, file by file.

They travel on the ``proxy-reload`` and ``proxy-settle`` steps' stdin, one secret
input, because the htpasswd lines are secret: whole, they would show only as one
new hash for any route, body-size or basic-auth edit. Here each file is shown under
its path, in the uploads' shape (``file``, ``content``) so the diff compares them
line by line: a ``vhost.d`` file as it is, an htpasswd file with each password hash
masked on its own (``USER:[secret:HASH]``), so a user added or removed still shows.
The plan's scrub still runs over the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.proxy.reload import HTPASSWD_DIRECTORY, manifest_files


def per_host_files(stdin: Any, mark: Callable[[Any], str]) -> list[dict[str, str]] | None:
    """The files of a per-host manifest, each secret masked by ``mark``; None when
    ``stdin`` is no manifest."""
    files = manifest_files(stdin) if isinstance(stdin, str) else None
    if files is None:
        return None
    shown = []
    for path, text in sorted(files.items()):
        if path.startswith(f"{HTPASSWD_DIRECTORY}/"):
            lines = []
            for line in text.splitlines():
                user, colon, secret = line.partition(":")
                lines.append(f"{user}:{mark(secret)}" if colon else mark(line))
            text = "\n".join(lines) + "\n"
        shown.append({"file": path, "content": text})
    return shown
