"""The per-host files reach nginx-proxy by a reload, never by replacing it.

A container's uploads are ForceNew in terraform-provider-docker, so a file uploaded
onto nginx-proxy that a hostname, route, basic-auth or body-size edit changes would
replace nginx-proxy, and every public site would go down with it. Those files
(``vhost.d/...`` and ``htpasswd/...``) live in two volumes instead, and one step
writes them. It runs before the proxy container is created or replaced, so a new
proxy renders its first config with every htpasswd in place:

- When the proxy runs with the two volumes, the step writes through ``docker exec``
  into it, then has it render and reload (below).
- Otherwise (the first ``up``, or the hand-made proxy of an adoption, which has
  other mounts there and is left alone) it writes into the volumes from a
  throwaway container of the proxy's image, with no network, and renders nothing:
  the proxy renders at its start.

When it reloads the running proxy:

- nginx-proxy's template includes ``vhost.d/<host>`` and turns basic auth on only
  when the file ``exists`` at render time (nginx.tmpl, 1.6.0), and docker-gen
  renders only on a container event or SIGHUP (docker-gen 0.14.0
  ``internal/generator/generator.go``). So the step renders itself, with the
  same command line as the image's Procfile (``app/Procfile``: ``docker-gen
  /app/nginx.tmpl /etc/nginx/conf.d/default.conf``; ``DOCKER_HOST`` is the
  image's own ``ENV``, which ``docker exec`` inherits).
- An included file's change leaves ``default.conf`` as it was, and docker-gen
  skips its notify when the rendered file did not change (generator.go,
  ``generateFromContainers``): the step runs ``nginx -t`` and ``nginx -s reload``
  itself. A reload is graceful: old workers finish their requests.
- A file that ``nginx -t`` refuses is rolled back, with the files that were
  there before, and the step fails; nginx never loads it.
- Files are written whole beside the old ones and renamed over them.
- An htpasswd file is removed only for a host that is still declared and no
  longer asks for basic auth. A host that went away keeps its files until its
  container is gone: its old container still serves during the update, and
  removing its htpasswd first would open it. A file of a host nobody declares is
  never included.

The files travel on stdin, one ``path base64`` line each, because the htpasswd
lines are secret; nothing secret is in the command line.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping

VHOST_DIRECTORY = "vhost.d"
HTPASSWD_DIRECTORY = "htpasswd"
NGINX_ROOT = "/etc/nginx"
RENDER = "docker-gen /app/nginx.tmpl /etc/nginx/conf.d/default.conf"
"""As nginx-proxy 1.6.0's app/Procfile runs it, without -watch and -notify."""

_INSIDE = r"""set -eu
cd /etc/nginx
mkdir -p vhost.d htpasswd
new=.hemma-new.
old=.hemma-old.
declared=' '
count=0
refuse() { echo "hemma: refusing to write /etc/nginx/$1" >&2; exit 2; }
while read -r path data; do
  case "$path" in
    */*/*|*/.*|*..*) refuse "$path" ;;
    vhost.d/?*|htpasswd/?*) ;;
    *) refuse "$path" ;;
  esac
  printf '%s' "$data" | base64 -d > "${path%/*}/$new${path##*/}"
  chmod 0644 "${path%/*}/$new${path##*/}"
  declared="$declared$path "
  count=$((count + 1))
done
if [ "$count" -eq 0 ]; then
  echo "hemma: no files came on stdin; nothing written" >&2
  exit 2
fi
# Keep what is there now, to put back if nginx refuses the new files.
changed=''
for staged in vhost.d/"$new"* htpasswd/"$new"*; do
  [ -e "$staged" ] || continue
  path="${staged%/*}/${staged##*/"$new"}"
  [ -e "$path" ] && cp -p "$path" "${path%/*}/$old${path##*/}"
  changed="$changed $path"
done
removed=''
for path in htpasswd/*; do
  [ -e "$path" ] || continue
  case "$declared" in
    *" $path "*) ;;
    *" vhost.d/${path#htpasswd/} "*)
      mv -f "$path" "htpasswd/$old${path#htpasswd/}"
      removed="$removed $path" ;;
  esac
done
for path in $changed; do
  mv -f "${path%/*}/$new${path##*/}" "$path"
done
if [ "${1:-reload}" = write ]; then
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
if ! RENDER_COMMAND || ! nginx -t -q; then
  rollback
  RENDER_COMMAND || true
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
        if directory not in (VHOST_DIRECTORY, HTPASSWD_DIRECTORY) or not name or "/" in name:
            raise ValueError(f"{path!r} is not a per-host file of nginx-proxy")
        lines.append(f"{path} {base64.b64encode(text.encode()).decode()}")
    return "\n".join(lines) + "\n"


def inside_script() -> str:
    """The POSIX sh that runs in the proxy (Debian's dash or Alpine's BusyBox)."""
    return _INSIDE.replace("RENDER_COMMAND", RENDER)


_HOST = r"""
mounted() {
  "$docker" inspect -f "{{range .Mounts}}{{if eq .Destination \"$1\"}}{{.Name}}{{end}}{{end}}" \
    "$container" 2>/dev/null
}
serving() {
  [ "$("$docker" inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ] &&
    [ "$(mounted /etc/nginx/vhost.d)" = "$vhost" ] &&
    [ "$(mounted /etc/nginx/htpasswd)" = "$htpasswd" ]
}
if serving; then
  "$docker" exec -i "$container" sh -c "$inside" sh reload
else
  "$docker" run --rm -i --network none --entrypoint sh \
    -v "$vhost:/etc/nginx/vhost.d" -v "$htpasswd:/etc/nginx/htpasswd" \
    "$image" -c "$inside" sh write
fi
"""


def reload_script(docker: str, container: str, volumes: tuple[str, str], image: str) -> str:
    """The host's bash: hand the manifest on stdin to the script inside the running
    proxy, or, while no proxy with the two volumes runs, to a throwaway container of
    ``image`` that mounts them."""
    q = shlex.quote
    vhost, htpasswd = volumes
    head = [
        "set -euo pipefail",
        f"docker={q(docker)}",
        f"container={q(container)}",
        f"vhost={q(vhost)}",
        f"htpasswd={q(htpasswd)}",
        f"image={q(image)}",
        f"inside={q(inside_script())}",
    ]
    return "\n".join(head) + _HOST
