"""A start-first container's name is drawn again whenever its inputs change, by the
digest of every input: a change deep inside one (a health check's timing, a published
port) is a change too, or the new copy would take the old one's name ("name already
in use") and the deploy would fail."""

from __future__ import annotations

import pulumi

from components.foundation.containers import Health, input_digest, localhost_port

BASE = {
    "image": "sha256:1",
    "healthcheck": Health("true").args(),
    "ports": [localhost_port(8000)],
}


@pulumi.runtime.test
def test_a_change_inside_a_health_check_or_a_port_is_a_new_digest() -> pulumi.Output[None]:
    def check(digests: list[str]) -> None:
        base, again, health, port = digests
        assert base == again
        assert health != base, "a health check's interval changed"
        assert port != base, "a published port changed"

    return pulumi.Output.all(
        input_digest(BASE, "key"),
        input_digest({**BASE, "ports": [localhost_port(8000)]}, "key"),
        input_digest({**BASE, "healthcheck": Health("true", interval=16).args()}, "key"),
        input_digest({**BASE, "ports": [localhost_port(8000, 18000)]}, "key"),
    ).apply(check)
