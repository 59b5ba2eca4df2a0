#!/usr/bin/env bash
# Hemma's nightly backup: dump every app database inside shared-postgres, take one
# restic snapshot of the dumps and the live volumes, then one snapshot of each
# volume whose containers must stop, taken while only they are stopped; prune by
# the keep policy only after a night in which all of it succeeded; and leave
# Prometheus textfile metrics saying how it went.
#
#   hemma-backup.sh --docker DOCKER --postgres CONTAINER --dumps DIR --env FILE
#                   --metrics DIR --volume-root DIR [--cache DIR] [--lock FILE]
#                   [--lock-wait SECONDS] [--keep-daily N] [--keep-weekly N]
#                   [--keep-monthly N] [--host NAME] [--stop-timeout SECONDS]
#                   [--database DB]... [--volume NAME:POLICY[:CONTAINER[,CONTAINER...]]]...
#
# POLICY is `live` (the files as they are, in the main snapshot) or `stop` (the
# listed containers are stopped for the volume's own snapshot and started again
# right after it, even when something fails).
#
# Every snapshot is tagged hemma-nightly and either complete or incomplete
# (a dump failed, a volume was missing, its containers could not be stopped, or
# restic could not read everything); a volume's own snapshot also carries
# hemma-volume=NAME. The drill and scripts/restore take the latest complete one.
# forget groups snapshots by host and tags, so an incomplete one never pushes a
# complete one out, and it runs only after a night in which everything succeeded.
#
# The repository is never created here (hemma-repository.sh init does that, once):
# one that is missing, or a local one on the system disk, fails the run. The jobs
# take turns on the repository and clear the stale locks a killed run leaves
# (hemma-restic.sh).
#
# Docker on Hemma is the snap: its CLI cannot read files outside $HOME, so the
# dumps come back on pg_dump's stdout and nothing is handed to it as a file. The
# repository's secrets live only in FILE (root-only) and are read in the subshell
# that runs restic, so no other program sees them and no argv carries them.
set -euo pipefail
umask 077

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=components/backups/files/hemma-restic.sh
. "$here/hemma-restic.sh"

readonly TAG=hemma-nightly
readonly NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.-]*$'

say() { printf 'hemma-backup: %s\n' "$*"; }
warn() { printf 'hemma-backup: %s\n' "$*" >&2; }
usage() {
  cat >&2 <<'USAGE'
usage: hemma-backup.sh --docker DOCKER --postgres CONTAINER --dumps DIR --env FILE
         --metrics DIR --volume-root DIR [--cache DIR] [--lock FILE]
         [--lock-wait SECONDS] [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
         [--host NAME] [--stop-timeout SECONDS]
         [--database DB]... [--volume NAME:live|NAME:stop:CONTAINER[,CONTAINER...]]...
USAGE
  exit 2
}
die() { warn "$*"; exit 2; }

docker="" postgres="" dumps="" env_file="" metrics="" volume_root=""
cache=/var/cache/hemma-restic lock=/run/lock/hemma-restic.lock lock_wait=43200
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
    --cache) cache=$2 ;;
    --lock) lock=$2 ;;
    --lock-wait) lock_wait=$2 ;;
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
for number in keep_daily keep_weekly keep_monthly stop_timeout lock_wait; do
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
restic_setup "$env_file" "$cache" "$lock"

started_at=$(date +%s)
work=$(mktemp -d)
dump_failures=0 volume_failures=0 restic_failed=0 repository_ok=1 size_bytes=0 finished=0
incomplete=0
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
    echo '# HELP hemma_backup_repository_ok Whether the last run found the repository where it belongs and could open it.'
    echo '# TYPE hemma_backup_repository_ok gauge'
    echo "hemma_backup_repository_ok $repository_ok"
    echo '# HELP hemma_backup_size_bytes Bytes restic read for the last snapshots (or the dumps).'
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

# The containers stopped for a copy, on disk until they run again: a run killed while
# they were stopped (a power cut, SIGKILL) leaves them stopped, and unless-stopped
# keeps them so across a daemon restart; the next run starts them first.
stopped_record="$(dirname "$dumps")/stopped-for-backup"

start_stopped() {
  [ "${#stopped[@]}" -gt 0 ] || return 0
  if "$docker" start "${stopped[@]}" >/dev/null; then
    say "started ${stopped[*]} again"
    rm -f "$stopped_record"
  else
    warn "could not start ${stopped[*]} again"
    volume_failures=$((volume_failures + 1))
  fi
  stopped=()
}

start_left_stopped() {
  local names=() name
  [ -f "$stopped_record" ] || return 0
  while IFS= read -r name; do
    [[ $name =~ $NAME_RE ]] && names+=("$name")
  done <"$stopped_record"
  if [ "${#names[@]}" -gt 0 ]; then
    warn "an earlier run stopped ${names[*]} and did not start them again: starting them"
    stopped=("${names[@]}")
    start_stopped
  fi
  rm -f "$stopped_record"
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

# snapshot WHAT COMPLETE [TAG...] -- PATH...: one restic snapshot, tagged complete
# when COMPLETE says its content is whole, else incomplete; its restic messages kept,
# its progress dropped. restic writes a snapshot only at the end of a run, so a run
# killed half-way leaves none. One it wrote while it could not read everything (exit
# 3) is tagged incomplete instead, and forgotten when that retag did not take (restic
# tag warns and exits 0 when it cannot change a snapshot: cmd_tag.go, 0.12.1 to 0.17.3).
snapshot() {
  local what=$1 complete=$2 rc=0 summary id read added said tags=(--tag "$TAG")
  shift 2
  while [ "$1" != -- ]; do tags+=(--tag "$1"); shift; done
  shift
  if [ "$complete" -eq 1 ]; then tags+=(--tag complete); else tags+=(--tag incomplete); fi
  restic_run backup --json "${tags[@]}" --host "$host" "$@" >"$work/backup.json" || rc=$?
  grep -v '"message_type":"status"' "$work/backup.json" | grep -v '"message_type":"summary"' >&2 || true
  summary=$(grep '"message_type":"summary"' "$work/backup.json" | tail -n 1 || true)
  id=$(sed -n 's/.*"snapshot_id":"\([0-9a-f]*\)".*/\1/p' <<<"$summary")
  read=$(sed -n 's/.*"total_bytes_processed":\([0-9]*\).*/\1/p' <<<"$summary")
  added=$(sed -n 's/.*"data_added":\([0-9]*\).*/\1/p' <<<"$summary")
  size_bytes=$((size_bytes + ${read:-0}))
  if [ "$rc" -eq 0 ] && [ -n "$id" ]; then
    say "snapshot ${id:0:8} of $what ($([ "$complete" -eq 1 ] && echo complete || echo incomplete)): ${read:-?} bytes read, ${added:-?} bytes added"
    [ "$complete" -eq 1 ] || incomplete=1
    return 0
  fi
  warn "restic backup of $what failed (exit $rc)"
  incomplete=1
  if [ -n "$id" ] && [ "$complete" -eq 1 ]; then
    said=$(restic_run tag --remove complete --add incomplete "$id" 2>&1) || true
    # "modified tags on 1 snapshots" (0.12 to 0.17), "modified 1 snapshots" (0.19)
    if grep -Eq 'modified (tags on )?1 snapshots' <<<"$said"; then
      warn "snapshot ${id:0:8} is tagged incomplete"
    else
      printf '%s\n' "$said" >&2
      if restic_run forget "$id" >/dev/null; then
        warn "snapshot ${id:0:8} could not be tagged incomplete: it is forgotten"
      else
        warn "snapshot ${id:0:8} could not be tagged incomplete nor forgotten: forget it by hand"
      fi
    fi
  fi
  return 1
}

# Turns, then the databases: the dumps are refreshed on Hemma's disk even when the
# repository cannot be reached.
repository_turn "$lock_wait" || exit 1
mkdir -p "$dumps"
chmod 0700 "$dumps"
start_left_stopped
for database in "${databases[@]}"; do
  target="$dumps/$database.dump"
  # pg_restore -l reads the whole table of contents: a cut-off dump fails it.
  if "$docker" exec "$postgres" pg_dump -U postgres --format=custom "$database" >"$target.partial" &&
    "$docker" exec -i "$postgres" pg_restore -l <"$target.partial" >/dev/null; then
    mv -f "$target.partial" "$target"
    say "dumped $database ($(stat -c %s "$target") bytes)"
  else
    rm -f "$target.partial"
    warn "pg_dump of $database failed; the snapshot keeps its previous dump, if any, and is incomplete"
    dump_failures=$((dump_failures + 1))
  fi
done

# Volumes: live ones join the dumps' snapshot; each stop one gets its own.
paths=("$dumps")
stop_volumes=()
main_complete=1
[ "$dump_failures" -eq 0 ] || main_complete=0
for i in "${!volume_names[@]}"; do
  data="$volume_root/${volume_names[$i]}/_data"
  if [ ! -d "$data" ]; then
    warn "volume ${volume_names[$i]} has no $data"
    volume_failures=$((volume_failures + 1))
    [ "${volume_policies[$i]}" = stop ] || main_complete=0
    continue
  fi
  if [ "${volume_policies[$i]}" = stop ]; then
    stop_volumes+=("$i")
  else
    paths+=("$data")
  fi
done

if repository_guard; then
  clear_stale_locks || warn "restic unlock failed"
else
  warn "the repository is missing or refused: nothing was backed up"
  repository_ok=0
  restic_failed=1
fi

if [ "$restic_failed" -eq 0 ]; then
  snapshot "the dumps and live volumes" "$main_complete" -- "${paths[@]}" || restic_failed=1
  for i in "${stop_volumes[@]}"; do
    name=${volume_names[$i]}
    IFS=, read -r -a listed <<<"${volume_containers[$i]}"
    to_stop=()
    for container in "${listed[@]}"; do
      # Only what runs now is stopped, so only that is started again afterwards.
      if [ "$("$docker" inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; then
        to_stop+=("$container")
      fi
    done
    complete=1
    if [ "${#to_stop[@]}" -gt 0 ]; then
      stopped=("${to_stop[@]}")
      printf '%s\n' "${to_stop[@]}" >"$stopped_record"
      say "stopping ${to_stop[*]} for the snapshot of $name"
      if ! "$docker" stop -t "$stop_timeout" "${to_stop[@]}" >/dev/null; then
        warn "could not stop ${to_stop[*]}; $name is copied live, and its snapshot is incomplete"
        volume_failures=$((volume_failures + 1))
        complete=0
      fi
    fi
    snapshot "$name" "$complete" "hemma-volume=$name" -- "$volume_root/$name/_data" || restic_failed=1
    start_stopped
  done
fi

success=1
[ "$dump_failures" -eq 0 ] && [ "$volume_failures" -eq 0 ] && [ "$restic_failed" -eq 0 ] &&
  [ "$incomplete" -eq 0 ] || success=0
# A volume no longer taken on its own (removed, or now live) leaves a group no night
# adds to, and the keep policy counts days with snapshots, not days: its group is cut
# to its last snapshot instead of being kept whole for ever. forget names every group
# it looked at, with its tags.
retired_volume_tags() {
  local taken=" " i tag
  for i in "${stop_volumes[@]}"; do taken+="hemma-volume=${volume_names[$i]} "; done
  grep -o 'hemma-volume=[A-Za-z0-9][A-Za-z0-9_.-]*' "$work/forget.out" | sort -u |
    while IFS= read -r tag; do
      [[ $taken == *" $tag "* ]] || printf '%s\n' "$tag"
    done
}

if [ "$success" -eq 1 ]; then
  rc=0
  restic_run forget --prune --tag "$TAG" --host "$host" --group-by host,tags \
    --keep-daily "$keep_daily" --keep-weekly "$keep_weekly" --keep-monthly "$keep_monthly" \
    >"$work/forget.out" || rc=$?
  cat "$work/forget.out"
  if [ "$rc" -ne 0 ]; then
    warn "restic forget --prune failed"
    restic_failed=1
    success=0
  fi
  retired=$(retired_volume_tags) || retired=""
  for tag in $retired; do
    say "$tag is no longer taken on its own: keeping its last snapshot only"
    restic_run forget --prune --tag "$TAG,$tag" --host "$host" --group-by host,tags \
      --keep-last 1 || warn "restic forget --prune of $tag failed"
  done
elif [ "$repository_ok" -eq 1 ]; then
  say "not pruning: the last complete snapshots stay until a night succeeds in full"
fi
[ "$size_bytes" -gt 0 ] || size_bytes=$(du -sb "$dumps" | cut -f 1)

write_metrics "$success"
finished=1
if [ "$success" -eq 1 ]; then
  say "backup complete"
  exit 0
fi
warn "backup failed: $dump_failures dump(s), $volume_failures volume(s), restic $([ "$restic_failed" -eq 0 ] && echo ok || echo failed)"
exit 1
