#!/bin/sh
# Stand-in for an app container: HTTP on one port, 200 on its health path, 404 elsewhere.
#   serve [PORT [HEALTH_PATH]]   (defaults: $SERVE_PORT, $SERVE_HEALTH_PATH)
# One image serves every app: each container picks its port and path at run time.
set -eu

port=${1:-${SERVE_PORT:-8080}}
health=${2:-${SERVE_HEALTH_PATH:-/health}}

case "$health" in
  /*) ;;
  *) echo "serve: health path must start with /: $health" >&2; exit 2 ;;
esac
case "$health" in
  */) file="/www${health}index.html" ;;
  *) file="/www${health}" ;;
esac
mkdir -p "$(dirname "$file")"
printf 'ok\n' >"$file"

httpd -f -p "$port" -h /www &
server=$!
# As PID 1 the shell ignores SIGTERM unless it traps it, and `docker stop` would
# then wait out its whole timeout before killing.
trap 'kill "$server" 2>/dev/null; exit 0' TERM INT
wait "$server"
