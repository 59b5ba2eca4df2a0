#!/usr/bin/env bash
# Dump every app database on shared-postgres and keep KEEP_DAYS days of dumps.
#
#   postgres-backup.sh DOCKER CONTAINER CREDENTIALS DIR KEEP_DAYS DATABASE...
#
# CREDENTIALS is a root-only env file (PGUSER, PGPASSWORD) handed to pg_dump by
# `docker exec --env-file`, so the password is never on a command line or in a
# unit. Dumps are pg_dump's custom format (compressed), written to a .partial
# file and renamed when complete. Old dumps are pruned only after a run in which
# every dump succeeded, so failing backups never eat the last good ones.
set -euo pipefail
umask 077

if [ "$#" -lt 6 ]; then
  echo "usage: $0 DOCKER CONTAINER CREDENTIALS DIR KEEP_DAYS DATABASE..." >&2
  exit 2
fi
docker=$1 container=$2 credentials=$3 dir=$4 keep_days=$5
shift 5

[ -r "$credentials" ] || { echo "cannot read $credentials" >&2; exit 1; }
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
failed=0
for database in "$@"; do
  target="$dir/$database-$stamp.dump"
  if "$docker" exec --env-file "$credentials" "$container" \
      pg_dump --host=127.0.0.1 --format=custom --compress=6 "$database" > "$target.partial"; then
    mv "$target.partial" "$target"
  else
    echo "pg_dump of $database failed" >&2
    rm -f "$target.partial"
    failed=1
  fi
done

if [ "$failed" -eq 0 ]; then
  find "$dir" -maxdepth 1 -type f -name '*.dump' -mtime +"$keep_days" -delete
fi
exit "$failed"
