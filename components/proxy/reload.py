"""The per-host files reach nginx-proxy by a reload, never by replacing it.

A container's uploads are ForceNew in terraform-provider-docker, so a file uploaded
onto nginx-proxy that a hostname, route, basic-auth or body-size edit changes would
replace nginx-proxy, and every public site would go down with it. Those files
(``vhost.d/...`` and ``htpasswd/...``) live in two volumes instead, written by two
steps with the same script:

- ``add`` runs before the proxy and every routed container is created or
  replaced. It adds and updates files and removes none, so a new proxy renders
  its first config with every htpasswd in place, and a host whose old container
  still serves during the ``up`` keeps its htpasswd.
- ``settle`` runs after every app container. It also removes the htpasswd of a
  host that is declared and no longer asks for basic auth (a host that moved to
  an open route, or whose route dropped auth), once the containers serving it
  are the new ones.

Each writes through ``docker exec`` into the proxy when it runs with the two
volumes, then has it render and reload (below). Otherwise (the first ``up``, or
the hand-made proxy of an adoption, which has other mounts there and is left
alone) it writes into the volumes from a throwaway container of the proxy's
image, with no network, and renders nothing: the proxy renders at its start,
and refuses to start without the files (``GUARD``).

When it reloads the running proxy:

- nginx-proxy's template includes ``vhost.d/<host>`` and turns basic auth on only
  when the file ``exists`` at render time (nginx.tmpl, 1.6.0), and docker-gen
  renders only on a container event or SIGHUP (docker-gen 0.14.0
  ``internal/generator/generator.go``). So the step renders itself, with the
  image's Procfile command (``app/Procfile``: ``docker-gen /app/nginx.tmpl
  /etc/nginx/conf.d/default.conf``; ``DOCKER_HOST`` is the image's own ``ENV``,
  which ``docker exec`` inherits; ``RESOLVERS``, which the entrypoint exports to
  PID 1 only, is read from there).
- docker-gen exits 0 when it cannot list the containers, without rendering
  (``generateFromContainers`` logs "Error listing containers" and returns). The
  step requires its "Generated" or "did not change" line.
- An included file's change leaves ``default.conf`` as it was, and docker-gen
  skips its notify then: the step runs ``nginx -t`` and ``nginx -s reload``
  itself. A reload is graceful: old workers finish their requests.
- A file that ``nginx -t`` refuses, or a render that fails, is rolled back with
  the files that were there before, and the step fails; nginx never loads it.
- Files are written whole beside the old ones and renamed over them. Every line is
  checked before any file is staged, and what an interrupted run staged is
  removed first.

The files travel on stdin, one ``path base64`` line each, because the htpasswd
lines are secret; nothing secret is in the command line.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping

VHOST_DIRECTORY = "vhost.d"
HTPASSWD_DIRECTORY = "htpasswd"
NGINX_ROOT = "/etc/nginx"
DEFAULT_CONF = "/etc/nginx/conf.d/default.conf"
RENDER = f"docker-gen /app/nginx.tmpl {DEFAULT_CONF}"
"""As nginx-proxy 1.6.0's app/Procfile runs it, without -watch and -notify."""
ADD, SETTLE = "add", "settle"
GUARD = (
    "test -e /etc/nginx/vhost.d/default || { echo 'hemma: /etc/nginx/vhost.d has no "
    "files: the proxy would serve every host without its limits and basic auth; run "
    "the proxy-reload step (scripts/pulumi up --replace its URN)' >&2; exit 1; }; "
    'exec /app/docker-entrypoint.sh "$@"'
)
"""nginx-proxy's entrypoint, behind a check that the per-host files are there: a
proxy on empty volumes (Docker's data lost, the volumes made again) stops instead
of serving protected hosts without basic auth. ``docker-entrypoint.sh`` runs its
setup only for the arguments ``forego start -r`` (1.6.0), which are passed on."""
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")

_INSIDE = r"""set -eu
cd /etc/nginx
mkdir -p vhost.d htpasswd
new=.hemma-new.
old=.hemma-old.
mode=$1
render=$2
refuse() { echo "hemma: refusing to write /etc/nginx/$1" >&2; exit 2; }
manifest=$(cat)
declared=' '
count=0
# The words of the manifest are never globbed; a name is checked before it is used.
set -f
for path in $manifest; do
  case "$path" in
    vhost.d/*|htpasswd/*) ;;
    *) continue ;;
  esac
  name=${path#*/}
  case "$name" in
    ''|.*|*/*|*..*|*[!a-z0-9._-]*) refuse "$path" ;;
  esac
  declared="$declared$path "
  count=$((count + 1))
done
lines=$(printf '%s\n' "$manifest" | grep -c . || true)
others=$(printf '%s\n' "$manifest" | grep -cvE '^[^ ]+ [A-Za-z0-9+/]*={0,2}$' || true)
if [ "$count" -eq 0 ] || [ "$count" -ne "$lines" ] || [ "$others" -ne 0 ]; then
  printf '%s\n' "$manifest" | while read -r path data; do
    case "$declared" in *" $path "*) ;; *) refuse "$path" ;; esac
  done || true
  echo "hemma: the files on stdin are not one 'path base64' line each; nothing written" >&2
  exit 2
fi
set +f
rm -f vhost.d/"$new"* htpasswd/"$new"* vhost.d/"$old"* htpasswd/"$old"*
printf '%s\n' "$manifest" | while read -r path data; do
  printf '%s' "$data" | base64 -d > "${path%/*}/$new${path##*/}"
  chmod 0644 "${path%/*}/$new${path##*/}"
done
changed=''
for path in $declared; do
  [ -e "$path" ] && cp -p "$path" "${path%/*}/$old${path##*/}"
  changed="$changed $path"
done
removed=''
if [ "$mode" = settle ]; then
  for path in htpasswd/*; do
    [ -e "$path" ] || continue
    case "$declared" in
      *" $path "*) ;;
      *" vhost.d/${path#htpasswd/} "*)
        mv -f "$path" "htpasswd/$old${path#htpasswd/}"
        removed="$removed $path" ;;
    esac
  done
fi
for path in $changed; do
  mv -f "${path%/*}/$new${path##*/}" "$path"
done
if [ "$render" = norender ]; then
  rm -f vhost.d/"$old"* htpasswd/"$old"*
  echo "hemma: $count per-host files in place, removed:${removed:- none};" \
    "the proxy renders them at its start"
  exit 0
fi
rollback() {
  for path in $changed; do
    if [ -e "${path%/*}/$old${path##*/}" ]; then
      mv -f "${path%/*}/$old${path##*/}" "$path"
    else
      rm -f "$path"
    fi
  done
  for path in $removed; do
    mv -f "${path%/*}/$old${path##*/}" "$path"
  done
}
if [ -r /proc/1/environ ]; then
  RESOLVERS=$(tr '\0' '\n' < /proc/1/environ | sed -n 's/^RESOLVERS=//p')
  export RESOLVERS
fi
rendered() {
  out=$(RENDER_COMMAND 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
  case "$out" in
    *"Generated 'DEFAULT_CONF'"*|*"Contents of DEFAULT_CONF did not change"*) ;;
    *) printf '%s\nhemma: docker-gen did not render DEFAULT_CONF\n' "$out" >&2; return 1 ;;
  esac
}
if ! rendered || ! nginx -t -q; then
  rollback
  rendered || true
  echo "hemma: nginx refused the new per-host files; the previous ones are back" >&2
  exit 1
fi
nginx -s reload
rm -f vhost.d/"$old"* htpasswd/"$old"*
echo "hemma: $count per-host files in place, removed:${removed:- none}; nginx reloaded"
"""


def manifest(files: Mapping[str, str]) -> str:
    """``path base64`` lines, sorted: what the step reads on stdin."""
    lines = []
    for path, text in sorted(files.items()):
        directory, _, name = path.partition("/")
        if directory not in (VHOST_DIRECTORY, HTPASSWD_DIRECTORY) or not _NAME.fullmatch(name):
            raise ValueError(f"{path!r} is not a per-host file of nginx-proxy")
        if ".." in name:
            raise ValueError(f"{path!r} is not a per-host file of nginx-proxy")
        lines.append(f"{path} {base64.b64encode(text.encode()).decode()}")
    return "\n".join(lines) + "\n"


def inside_script() -> str:
    """The POSIX sh that runs in the proxy (Debian's dash or Alpine's BusyBox)."""
    return _INSIDE.replace("RENDER_COMMAND", RENDER).replace("DEFAULT_CONF", DEFAULT_CONF)


_HOST = r"""
mounted() {
  "$docker" inspect -f "{{range .Mounts}}{{if eq .Destination \"$1\"}}{{.Name}}{{end}}{{end}}" \
    "$container" 2>/dev/null
}
serving() {
  [ "$("$docker" inspect -f '{{.State.Running}} {{.State.Restarting}} {{.State.Paused}}' \
    "$container" 2>/dev/null)" = "true false false" ] &&
    [ "$(mounted /etc/nginx/vhost.d)" = "$vhost" ] &&
    [ "$(mounted /etc/nginx/htpasswd)" = "$htpasswd" ]
}
if serving; then
  "$docker" exec -i "$container" sh -c "$inside" sh "$mode" render
else
  "$docker" run --rm -i --network none --entrypoint sh \
    -v "$vhost:/etc/nginx/vhost.d" -v "$htpasswd:/etc/nginx/htpasswd" \
    "$image" -c "$inside" sh "$mode" norender
fi
"""


def reload_script(
    docker: str, container: str, volumes: tuple[str, str], image: str, mode: str = ADD
) -> str:
    """The host's bash: hand the manifest on stdin to the script inside the running
    proxy, or, while no proxy with the two volumes runs, to a throwaway container of
    ``image`` that mounts them. ``mode``: ``add`` (add and update only) or
    ``settle`` (remove the htpasswd of declared hosts without basic auth too)."""
    if mode not in (ADD, SETTLE):
        raise ValueError(f"unknown mode {mode!r}")
    q = shlex.quote
    vhost, htpasswd = volumes
    head = [
        "set -euo pipefail",
        f"docker={q(docker)}",
        f"container={q(container)}",
        f"vhost={q(vhost)}",
        f"htpasswd={q(htpasswd)}",
        f"image={q(image)}",
        f"mode={mode}",
        f"inside={q(inside_script())}",
    ]
    return "\n".join(head) + _HOST
