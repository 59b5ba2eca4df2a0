#!/usr/bin/env bash
# Hemma's nightly backup: dump every app database inside shared-postgres, take one
# restic snapshot of the dumps and the app volumes, prune by the keep policy, and
# leave Prometheus textfile metrics saying how it went.
#
#   hemma-backup.sh --docker DOCKER --postgres CONTAINER --dumps DIR --env FILE
#                   --metrics DIR --volume-root DIR
#                   [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
#                   [--host NAME] [--stop-timeout SECONDS]
#                   [--database DB]... [--volume NAME:POLICY[:CONTAINER[,CONTAINER...]]]...
#
# POLICY is `live` (the files as they are) or `stop` (the listed containers are
# stopped for the snapshot and started again, even when something fails).
#
# Docker on Hemma is the snap: its CLI cannot read files outside $HOME, so the
# dumps come back on pg_dump's stdout and nothing is handed to it as a file. The
# repository's secrets live only in FILE (root-only) and are read in the subshell
# that runs restic, so no other program sees them and no argv carries them.
set -euo pipefail
umask 077

readonly TAG=hemma-nightly
readonly NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.-]*$'

say() { printf 'hemma-backup: %s\n' "$*"; }
warn() { printf 'hemma-backup: %s\n' "$*" >&2; }
usage() {
  cat >&2 <<'USAGE'
usage: hemma-backup.sh --docker DOCKER --postgres CONTAINER --dumps DIR --env FILE
         --metrics DIR --volume-root DIR [--keep-daily N] [--keep-weekly N]
         [--keep-monthly N] [--host NAME] [--stop-timeout SECONDS]
         [--database DB]... [--volume NAME:live|NAME:stop:CONTAINER[,CONTAINER...]]...
USAGE
  exit 2
}
die() { warn "$*"; exit 2; }

docker="" postgres="" dumps="" env_file="" metrics="" volume_root=""
keep_daily=7 keep_weekly=4 keep_monthly=12 host=hemma stop_timeout=120
databases=() volume_specs=()
while [ "$#" -gt 0 ]; do
  case $1 in -h | --help) usage ;; esac
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --docker) docker=$2 ;;
    --postgres) postgres=$2 ;;
    --dumps) dumps=$2 ;;
    --env) env_file=$2 ;;
    --metrics) metrics=$2 ;;
    --volume-root) volume_root=$2 ;;
    --keep-daily) keep_daily=$2 ;;
    --keep-weekly) keep_weekly=$2 ;;
    --keep-monthly) keep_monthly=$2 ;;
    --host) host=$2 ;;
    --stop-timeout) stop_timeout=$2 ;;
    --database) databases+=("$2") ;;
    --volume) volume_specs+=("$2") ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done

for required in docker postgres dumps env_file metrics volume_root; do
  [ -n "${!required}" ] || die "--${required//_/-} is required"
done
for number in keep_daily keep_weekly keep_monthly stop_timeout; do
  [[ ${!number} =~ ^[0-9]+$ ]] || die "--${number//_/-} must be a whole number"
done
[[ $host =~ $NAME_RE ]] || die "bad --host: $host"
for database in "${databases[@]}"; do
  [[ $database =~ $NAME_RE ]] || die "bad database name: $database"
done

# NAME:POLICY[:CONTAINERS] -> parallel arrays.
volume_names=() volume_policies=() volume_containers=()
for spec in "${volume_specs[@]}"; do
  IFS=: read -r name policy containers extra <<<"$spec"
  [ -z "${extra:-}" ] || die "bad --volume: $spec"
  [[ $name =~ $NAME_RE ]] || die "bad volume name in --volume $spec"
  case ${policy:-} in
    live) [ -z "${containers:-}" ] || die "--volume $spec: a live volume stops no containers" ;;
    stop) [ -n "${containers:-}" ] || die "--volume $spec: name the containers to stop" ;;
    *) die "--volume $spec: the policy is live or stop" ;;
  esac
  IFS=, read -r -a listed <<<"${containers:-}"
  for container in "${listed[@]}"; do
    [[ $container =~ $NAME_RE ]] || die "bad container name in --volume $spec"
  done
  volume_names+=("$name") volume_policies+=("$policy") volume_containers+=("${containers:-}")
done

[ -f "$env_file" ] || die "cannot read $env_file"
if [ -n "$(find "$env_file" -maxdepth 0 -perm /077)" ]; then
  die "$env_file is readable by others: it holds the repository password (chmod 600)"
fi
# Under systemd without User= there is no $HOME, and restic would run without a cache.
if [ -z "${HOME:-}" ] && [ -z "${RESTIC_CACHE_DIR:-}" ]; then
  export RESTIC_CACHE_DIR=/var/cache/restic
fi

restic_run() (
  set -a
  # shellcheck disable=SC1090  # the operator's env file, root-only
  . "$env_file"
  set +a
  exec restic "$@"
)

started_at=$(date +%s)
work=$(mktemp -d)
dump_failures=0 volume_failures=0 restic_failed=0 size_bytes="" finished=0
stopped=()

metric_file="$metrics/hemma_backup.prom"
previous_success() {
  [ -f "$metric_file" ] || return 0
  sed -n 's/^hemma_backup_last_success_timestamp_seconds \([0-9][0-9.e+]*\)$/\1/p' "$metric_file" | tail -n 1
}

write_metrics() {
  local success=$1 now last tmp
  now=$(date +%s)
  last=$(previous_success)
  [ "$success" -eq 0 ] || last=$now
  # node-exporter reads it as nobody: the directory and its parents stay 0755.
  (umask 022 && mkdir -p "$metrics")
  tmp=$(mktemp "$metrics/.hemma_backup.prom.XXXXXX")
  {
    echo '# HELP hemma_backup_last_success_timestamp_seconds When a backup run last succeeded in full.'
    echo '# TYPE hemma_backup_last_success_timestamp_seconds gauge'
    echo "hemma_backup_last_success_timestamp_seconds ${last:-0}"
    echo '# HELP hemma_backup_last_run_timestamp_seconds When the last backup run ended.'
    echo '# TYPE hemma_backup_last_run_timestamp_seconds gauge'
    echo "hemma_backup_last_run_timestamp_seconds $now"
    echo '# HELP hemma_backup_last_run_success Whether the last backup run succeeded (1) or not (0).'
    echo '# TYPE hemma_backup_last_run_success gauge'
    echo "hemma_backup_last_run_success $success"
    echo '# HELP hemma_backup_size_bytes Bytes restic read for the last snapshot (or the dumps).'
    echo '# TYPE hemma_backup_size_bytes gauge'
    echo "hemma_backup_size_bytes ${size_bytes:-0}"
    echo '# HELP hemma_backup_dump_failures Databases whose dump failed in the last run.'
    echo '# TYPE hemma_backup_dump_failures gauge'
    echo "hemma_backup_dump_failures $dump_failures"
    echo '# HELP hemma_backup_volume_failures Volumes missing or not stopped cleanly in the last run.'
    echo '# TYPE hemma_backup_volume_failures gauge'
    echo "hemma_backup_volume_failures $volume_failures"
    echo '# HELP hemma_backup_duration_seconds How long the last run took.'
    echo '# TYPE hemma_backup_duration_seconds gauge'
    echo "hemma_backup_duration_seconds $((now - started_at))"
  } >"$tmp"
  # The textfile collector runs as another user; the file says nothing secret.
  chmod 0644 "$tmp"
  mv -f "$tmp" "$metric_file"
}

start_stopped() {
  [ "${#stopped[@]}" -gt 0 ] || return 0
  if "$docker" start "${stopped[@]}" >/dev/null; then
    say "started ${stopped[*]} again"
  else
    warn "could not start ${stopped[*]} again"
    volume_failures=$((volume_failures + 1))
  fi
  stopped=()
}

# shellcheck disable=SC2317  # only the EXIT trap calls it
on_exit() {
  local code=$?
  trap - EXIT
  start_stopped
  rm -rf "$work"
  if [ "$finished" -eq 0 ]; then
    write_metrics 0 || warn "could not write $metric_file"
    [ "$code" -ne 0 ] || code=1
  fi
  exit "$code"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Databases.
mkdir -p "$dumps"
chmod 0700 "$dumps"
for database in "${databases[@]}"; do
  target="$dumps/$database.dump"
  # pg_restore -l reads the whole table of contents: a cut-off dump fails it.
  if "$docker" exec "$postgres" pg_dump -U postgres --format=custom "$database" >"$target.partial" &&
    "$docker" exec -i "$postgres" pg_restore -l <"$target.partial" >/dev/null; then
    mv -f "$target.partial" "$target"
    say "dumped $database ($(stat -c %s "$target") bytes)"
  else
    rm -f "$target.partial"
    warn "pg_dump of $database failed; the snapshot keeps its previous dump, if any"
    dump_failures=$((dump_failures + 1))
  fi
done

# Volumes: which paths go in, and which running containers must stop for them.
paths=("$dumps")
to_stop=()
for i in "${!volume_names[@]}"; do
  data="$volume_root/${volume_names[$i]}/_data"
  if [ ! -d "$data" ]; then
    warn "volume ${volume_names[$i]} has no $data"
    volume_failures=$((volume_failures + 1))
    continue
  fi
  paths+=("$data")
  [ "${volume_policies[$i]}" = stop ] || continue
  IFS=, read -r -a listed <<<"${volume_containers[$i]}"
  for container in "${listed[@]}"; do
    # Only what runs now is stopped, so only that is started again afterwards.
    if [ "$("$docker" inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; then
      [[ " ${to_stop[*]} " == *" $container "* ]] || to_stop+=("$container")
    fi
  done
done

# The repository: initialised once, never again; an unreachable one is an error.
rc=0
err=$(restic_run cat config 2>&1 >/dev/null) || rc=$?
if [ "$rc" -ne 0 ]; then
  case $rc:$err in
    10:* | *"no such file or directory"* | *"does not exist"* | *NoSuchBucket* | *NoSuchKey*)
      say "no repository yet: initialising it"
      restic_run init >/dev/null || restic_failed=1
      ;;
    *)
      printf '%s\n' "$err" >&2
      warn "the repository cannot be opened"
      restic_failed=1
      ;;
  esac
fi

if [ "$restic_failed" -eq 0 ]; then
  if [ "${#to_stop[@]}" -gt 0 ]; then
    stopped=("${to_stop[@]}")
    say "stopping ${to_stop[*]} for the snapshot"
    if ! "$docker" stop -t "$stop_timeout" "${to_stop[@]}" >/dev/null; then
      warn "could not stop ${to_stop[*]}; their volumes are copied live"
      volume_failures=$((volume_failures + 1))
    fi
  fi
  rc=0
  restic_run backup --json --tag "$TAG" --host "$host" "${paths[@]}" >"$work/backup.json" || rc=$?
  start_stopped
  # restic's status lines are progress only; its errors and the summary are kept.
  grep -v '"message_type":"status"' "$work/backup.json" | grep -v '"message_type":"summary"' >&2 || true
  summary=$(grep '"message_type":"summary"' "$work/backup.json" | tail -n 1 || true)
  size_bytes=$(sed -n 's/.*"total_bytes_processed":\([0-9]*\).*/\1/p' <<<"$summary")
  snapshot=$(sed -n 's/.*"snapshot_id":"\([0-9a-f]*\)".*/\1/p' <<<"$summary")
  if [ "$rc" -eq 0 ] && [ -n "$snapshot" ]; then
    added=$(sed -n 's/.*"data_added":\([0-9]*\).*/\1/p' <<<"$summary")
    say "snapshot $snapshot: ${size_bytes:-?} bytes read, ${added:-?} bytes added"
    if ! restic_run forget --prune --tag "$TAG" --host "$host" --group-by host,tags \
      --keep-daily "$keep_daily" --keep-weekly "$keep_weekly" --keep-monthly "$keep_monthly"; then
      warn "restic forget --prune failed"
      restic_failed=1
    fi
  else
    warn "restic backup failed (exit $rc)"
    restic_failed=1
  fi
fi
[ -n "$size_bytes" ] || size_bytes=$(du -sb "$dumps" | cut -f 1)

success=1
[ "$dump_failures" -eq 0 ] && [ "$volume_failures" -eq 0 ] && [ "$restic_failed" -eq 0 ] || success=0
write_metrics "$success"
finished=1
if [ "$success" -eq 1 ]; then
  say "backup complete"
  exit 0
fi
warn "backup failed: $dump_failures dump(s), $volume_failures volume(s), restic $([ "$restic_failed" -eq 0 ] && echo ok || echo failed)"
exit 1
