"""The files nginx-proxy reads, as the program hands them over: the static ones as
uploads onto the container, the per-host ones on the reload step's stdin."""

from __future__ import annotations

import base64

from tests.harness import Declared, Program

RELOAD_STEP = "proxy-reload"
SETTLE_STEP = "proxy-settle"


def uploaded(proxy: Declared) -> dict[str, str]:
    """``/etc/nginx/...`` -> text, for every upload onto nginx-proxy."""
    return {u["file"]: u["content"] for u in proxy.inputs.get("uploads", [])}


def per_host(program: Program) -> dict[str, str]:
    """``vhost.d/...`` and ``htpasswd/...`` -> text, decoded from the reload step's stdin."""
    files = {}
    for line in program.named(RELOAD_STEP).inputs["stdin"].splitlines():
        path, data = line.split(" ")
        files[path] = base64.b64decode(data).decode()
    return files


def nginx_files(program: Program) -> dict[str, str]:
    """Every file nginx-proxy reads, by path relative to /etc/nginx."""
    static = {
        path.removeprefix("/etc/nginx/"): text
        for path, text in uploaded(program.container("nginx-proxy")).items()
    }
    return {**static, **per_host(program)}
