"""Draining the old copy of a start-first service before the engine deletes it.

nginx-proxy routes only to healthy containers (``DOCKER_CONTAINER_FILTERS``), and
docker-gen renders again on ``health_status`` events. A container that is being
stopped stays healthy, and so stays in its upstream, until its process exits:
docker-gen renders on ``stop``/``die``, not on the stop signal. So the old copy is
taken out of the upstream first: the drain file turns its health check red, Docker
marks it unhealthy after ``retries`` failed checks, docker-gen renders without it
and nginx reloads (its old workers finish the requests in flight). Only then does
the engine stop it, with its grace period, at the end of the update.

The step runs once the new copy is healthy (its ``wait`` or its last step), and
before it drains anything it waits until nginx routes to the new copy: a service
is never left with no server in its upstream.
"""

from __future__ import annotations

import shlex

DRAIN_FILE = "/tmp/hemma-drain"
"""Inside a start-first container: while it exists, the health check fails."""
START_FIRST_INTERVAL = 5
START_FIRST_RETRIES = 6
"""A start-first container's check: a drain takes about interval x retries (30 s),
and a stall shorter than that does not take the only copy out of nginx's upstream
(the health filter routes to healthy containers only)."""
RENDERED = "/etc/nginx/conf.d/default.conf"
"""What docker-gen renders in nginx-proxy (its app/Procfile, 1.6.0 to 1.11.6)."""


def drainable(command: str) -> str:
    """The health check ``command``, failing while the drain file exists."""
    return f"test ! -e {DRAIN_FILE} && {{ {command}\n}}"


_BODY = r"""
deadline=$((SECONDS + timeout))
wait_for() {  # WHAT COMMAND...: until COMMAND succeeds, or fail naming WHAT
  local what=$1
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "hemma-drain: $service: timed out waiting until $what" >&2
      exit 1
    fi
    sleep 1
  done
}
addresses() {
  "$docker" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1"
}
routed() {  # CONTAINER: nginx-proxy's upstreams hold one of its addresses
  local address rendered
  rendered=$("$docker" exec "$proxy" cat "$rendered_path") || return 1
  for address in $(addresses "$1"); do
    if grep -qF "server $address:" <<<"$rendered"; then
      return 0
    fi
  done
  return 1
}
not_routed() { ! routed "$1"; }
out_of_service() {  # CONTAINER: not healthy, by a check that began after the drain
  # file was written (whole seconds, so one second later): with the file no check can
  # pass again. A check begun before it can still pass and route a copy that was
  # starting (Docker sets healthy on one pass), so that one does not count.
  local log='{{with .State.Health}}{{.Status}}{{range .Log}} {{.Start.Unix}}{{end}}{{end}}'
  local found words status started
  found=$("$docker" inspect -f "$log" "$1") || return 0  # removed meanwhile
  read -r -a words <<<"$found"
  status=${words[0]:-}
  [ "$status" != healthy ] || return 1
  for started in "${words[@]:1}"; do
    if [ "$started" -gt "$drained_at" ]; then
      return 0
    fi
  done
  return 1
}

new_id=$("$docker" inspect -f '{{.Id}}' "$new")
wait_for "nginx routes to $new" routed "$new"
# Captured first: a failing docker ps stops the step (set -e), where a process
# substitution would hide it and leave the old copy undrained.
listed=$("$docker" ps -q --no-trunc --filter "label=$label=$service" --filter status=running)
old=()
for id in $listed; do
  if [ "$id" != "$new_id" ]; then
    old+=("$id")
  fi
done
if [ "${#old[@]}" -eq 0 ]; then
  echo "hemma-drain: $service: no old copy runs"
  exit 0
fi
drained_at=$(date +%s)
for id in "${old[@]}"; do
  "$docker" exec "$id" touch "$drain_file"
done
for id in "${old[@]}"; do
  wait_for "${id:0:12} is out of service" out_of_service "$id"
  wait_for "nginx no longer routes to ${id:0:12}" not_routed "$id"
done
# nginx's reload is a signal: give its old workers time to pick it up.
sleep 2
echo "hemma-drain: $service: drained ${#old[@]} old copies; $new serves alone"
"""


def drain_script(docker: str, service: str, new: str, proxy: str, label: str, timeout: int) -> str:
    """Wait until nginx-proxy ``proxy`` routes to ``new``, then drain every other running
    container labelled ``label=service`` and wait until nginx no longer routes to it."""
    q = shlex.quote
    head = [
        "set -euo pipefail",
        f"docker={q(docker)}",
        f"service={q(service)}",
        f"new={q(new)}",
        f"proxy={q(proxy)}",
        f"label={q(label)}",
        f"drain_file={q(DRAIN_FILE)}",
        f"rendered_path={q(RENDERED)}",
        f"timeout={int(timeout)}",
    ]
    return "\n".join(head) + _BODY
