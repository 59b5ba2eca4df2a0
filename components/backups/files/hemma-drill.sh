#!/usr/bin/env bash
# Hemma's restore drill: prove the latest complete nightly snapshots restore. Every
# database dump in the latest complete snapshot of the dumps is restored into a
# scratch database inside shared-postgres and the probes run there; a random sample
# of volume files, from that snapshot and from the latest complete snapshot of each
# volume taken on its own, is restored and compared with the live files that have
# not changed since. Prometheus textfile metrics say how it went; any failure makes
# the exit status non-zero.
#
#   hemma-drill.sh --docker DOCKER --postgres CONTAINER --env FILE --metrics DIR
#                  --scratch DIR --dumps DIR [--probe DB:SQL]... [--probes FILE]
#                  [--sample N] [--host NAME] [--checks FILE] [--cache DIR]
#                  [--lock FILE] [--lock-wait SECONDS]
#
# --checks FILE holds one check per line, tab-separated: DB, CONTAINER, then the
# command's words. The restored copy of DB is handed to the role that owns the live
# DB (hemma-hand-over.sql), and the command runs inside the running CONTAINER with
# its DATABASE_URL pointed at the copy (the runbook's "both Django services migrate
# and boot"). It passes when it exits 0; the live database is never named.
#
# --probes FILE holds one DB:SQL per line: a unit's ExecStart cannot carry SQL, whose
# spaces and quotes systemd would split and read itself.
# A probe passes when its SQL succeeds and prints something other than 0, f or
# nothing (its first line counts). --dumps is the dump directory as the backup
# saw it.
#
# An incomplete snapshot (hemma-backup.sh tags a night's snapshot so when a dump
# failed or a volume could not be taken) is never drilled: its dump of a database
# whose dump failed is an older one. The drill waits its turn on the repository and
# refuses one that is missing or misplaced (hemma-restic.sh).
#
# Docker on Hemma is the snap: its CLI cannot read files outside $HOME, so each
# dump reaches pg_restore on stdin.
set -euo pipefail
umask 077

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=components/backups/files/hemma-restic.sh
. "$here/hemma-restic.sh"

readonly TAG=hemma-nightly
readonly NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.-]*$'
readonly SERVICE_LABEL=education.hule.hemma.service

say() { printf 'hemma-drill: %s\n' "$*"; }
warn() { printf 'hemma-drill: %s\n' "$*" >&2; }
die() { warn "$*"; exit 2; }
usage() {
  cat >&2 <<'USAGE'
usage: hemma-drill.sh --docker DOCKER --postgres CONTAINER --env FILE --metrics DIR
         --scratch DIR --dumps DIR [--probe DB:SQL]... [--probes FILE] [--sample N]
         [--host NAME] [--checks FILE] [--cache DIR] [--lock FILE] [--lock-wait SECONDS]
USAGE
  exit 2
}

docker="" postgres="" env_file="" metrics="" scratch="" dumps_path=""
sample=0 host=hemma
cache=/var/cache/hemma-restic lock=/run/lock/hemma-restic.lock lock_wait=43200
probe_dbs=() probe_sqls=() check_lines=()
while [ "$#" -gt 0 ]; do
  case $1 in -h | --help) usage ;; esac
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --docker) docker=$2 ;;
    --postgres) postgres=$2 ;;
    --env) env_file=$2 ;;
    --metrics) metrics=$2 ;;
    --scratch) scratch=$2 ;;
    --sample) sample=$2 ;;
    --host) host=$2 ;;
    --dumps) dumps_path=${2%/} ;;
    --cache) cache=$2 ;;
    --lock) lock=$2 ;;
    --lock-wait) lock_wait=$2 ;;
    --probe)
      [[ $2 == *:* ]] || die "--probe is DB:SQL"
      probe_dbs+=("${2%%:*}") probe_sqls+=("${2#*:}")
      ;;
    --probes)
      [ -r "$2" ] || die "cannot read --probes $2"
      while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] || continue
        [[ $line == *:* ]] || die "a line of --probes is DB:SQL"
        probe_dbs+=("${line%%:*}") probe_sqls+=("${line#*:}")
      done <"$2"
      ;;
    --checks)
      [ -r "$2" ] || die "cannot read --checks $2"
      while IFS= read -r line || [ -n "$line" ]; do
        [ -z "$line" ] || check_lines+=("$line")
      done <"$2"
      ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in docker postgres env_file metrics scratch; do
  [ -n "${!required}" ] || die "--${required//_/-} is required"
done
[ -n "$dumps_path" ] || die "--dumps is required"
[[ $sample =~ ^[0-9]+$ ]] || die "--sample must be a whole number"
[[ $lock_wait =~ ^[0-9]+$ ]] || die "--lock-wait must be a whole number"
[[ $host =~ $NAME_RE ]] || die "bad --host: $host"
for database in "${probe_dbs[@]}"; do
  [[ $database =~ $NAME_RE ]] || die "bad database name in --probe: $database"
done
for line in "${check_lines[@]}"; do
  IFS=$'\t' read -r -a words <<<"$line"
  [ "${#words[@]}" -ge 3 ] || die "a line of --checks is DB<TAB>CONTAINER<TAB>COMMAND..."
  [[ ${words[0]} =~ $NAME_RE ]] || die "bad database name in --checks: ${words[0]}"
  [[ ${words[1]} =~ $NAME_RE ]] || die "bad container name in --checks: ${words[1]}"
done
[ -f "$env_file" ] || die "cannot read $env_file"
if [ -n "$(find "$env_file" -maxdepth 0 -perm /077)" ]; then
  die "$env_file is readable by others: it holds the repository password (chmod 600)"
fi
restic_setup "$env_file" "$cache" "$lock"

label() {
  local value=$1
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  printf '%s' "$value"
}

mkdir -p "$scratch"
work=$(mktemp -d "$scratch/drill.XXXXXX")
snapshot_failed=0 snapshot_epoch=0 finished=0
sample_match=0 sample_mismatch=0 sample_skipped=0 sample_failures=0
declare -A db_failures=()
created=()

metric_file="$metrics/hemma_drill.prom"
write_metrics() {
  local success=$1 now last tmp database
  now=$(date +%s)
  last=""
  if [ -f "$metric_file" ]; then
    last=$(sed -n 's/^hemma_drill_last_success_timestamp_seconds \([0-9][0-9.e+]*\)$/\1/p' \
      "$metric_file" | tail -n 1)
  fi
  [ "$success" -eq 0 ] || last=$now
  # node-exporter reads it as nobody: the directory and its parents stay 0755.
  (umask 022 && mkdir -p "$metrics")
  tmp=$(mktemp "$metrics/.hemma_drill.prom.XXXXXX")
  {
    echo '# HELP hemma_drill_last_success_timestamp_seconds When a restore drill last passed.'
    echo '# TYPE hemma_drill_last_success_timestamp_seconds gauge'
    echo "hemma_drill_last_success_timestamp_seconds ${last:-0}"
    echo '# HELP hemma_drill_last_run_timestamp_seconds When the last restore drill ended.'
    echo '# TYPE hemma_drill_last_run_timestamp_seconds gauge'
    echo "hemma_drill_last_run_timestamp_seconds $now"
    echo '# HELP hemma_drill_last_run_success Whether the last restore drill passed (1) or not (0).'
    echo '# TYPE hemma_drill_last_run_success gauge'
    echo "hemma_drill_last_run_success $success"
    echo '# HELP hemma_drill_snapshot_timestamp_seconds When the snapshot the drill restored was taken.'
    echo '# TYPE hemma_drill_snapshot_timestamp_seconds gauge'
    echo "hemma_drill_snapshot_timestamp_seconds $snapshot_epoch"
    echo '# HELP hemma_drill_failures Failed checks in the last drill, by check and database.'
    echo '# TYPE hemma_drill_failures gauge'
    echo "hemma_drill_failures{check=\"snapshot\"} $snapshot_failed"
    for database in "${!db_failures[@]}"; do
      echo "hemma_drill_failures{check=\"database\",database=\"$(label "$database")\"} ${db_failures[$database]}"
    done
    echo "hemma_drill_failures{check=\"sample\"} $sample_failures"
    echo '# HELP hemma_drill_sample_files Sampled volume files, by how they compared with the live ones.'
    echo '# TYPE hemma_drill_sample_files gauge'
    echo "hemma_drill_sample_files{result=\"match\"} $sample_match"
    echo "hemma_drill_sample_files{result=\"mismatch\"} $sample_mismatch"
    echo "hemma_drill_sample_files{result=\"skipped\"} $sample_skipped"
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$metric_file"
}

drop_scratch() {
  local database=$1 keep=() other
  if ! "$docker" exec "$postgres" dropdb -U postgres --if-exists "$database"; then
    warn "could not drop the scratch database $database"
    return 1
  fi
  for other in "${created[@]}"; do
    [ "$other" = "$database" ] || keep+=("$other")
  done
  created=("${keep[@]}")
}

# shellcheck disable=SC2317  # only the EXIT trap calls it
on_exit() {
  local code=$? database
  trap - EXIT
  for database in "${created[@]}"; do
    drop_scratch "$database" || true
  done
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

fail_db() { db_failures[$1]=$((${db_failures[$1]:-0} + 1)); }

has_checks() {
  local line
  for line in "${check_lines[@]}"; do
    [ "${line%%$'\t'*}" != "$1" ] || return 0
  done
  return 1
}

# The restored copy as the app sees its own database: owned by the live one's owner,
# and everything in it too (hemma-hand-over.sql; pg_restore ran as postgres).
hand_over() {
  local database=$1 scratch_db=$2
  "$docker" exec -i "$postgres" psql -U postgres -d "$scratch_db" -q -At -v ON_ERROR_STOP=1 \
    -v live="$database" <"$here/hemma-hand-over.sql" >/dev/null
}

# The container to run SERVICE's checks in: the newest healthy one labelled with it
# (a start-first service's own name changes with each deploy), else the newest
# running one, else the name itself.
service_container() {
  local found
  found=$("$docker" ps -q --filter "label=$SERVICE_LABEL=$1" --filter health=healthy)
  [ -n "$found" ] ||
    found=$("$docker" ps -q --filter "label=$SERVICE_LABEL=$1" --filter status=running)
  found=${found%%$'\n'*}
  printf '%s\n' "${found:-$1}"
}

# Each check of DATABASE, in order, inside its container, against SCRATCH_DB.
run_checks() {
  local database=$1 scratch_db=$2 line words number=0 container
  for line in "${check_lines[@]}"; do
    IFS=$'\t' read -r -a words <<<"$line"
    [ "${words[0]}" = "$database" ] || continue
    number=$((number + 1))
    container=$(service_container "${words[1]}")
    # shellcheck disable=SC2016  # expanded by the container's shell
    if "$docker" exec "$container" sh -c \
      'DATABASE_URL="${DATABASE_URL%/*}/$1"; export DATABASE_URL; shift; exec "$@"' \
      drill "$scratch_db" "${words[@]:2}" >/dev/null; then
      say "check $number on $database passed in ${words[1]}: ${words[*]:2}"
    else
      warn "check $number on $database failed in ${words[1]}: ${words[*]:2}"
      fail_db "$database"
      return 0
    fi
  done
}

# snapshot_fields JSON: "ID EPOCH" of the one snapshot restic listed, or nothing.
snapshot_fields() {
  local id taken
  id=$(grep -o '"id":"[0-9a-f]*"' <<<"$1" | head -n 1 | cut -d '"' -f 4 || true)
  [ -n "$id" ] || return 0
  taken=$(grep -o '"time":"[^"]*"' <<<"$1" | head -n 1 | cut -d '"' -f 4)
  printf '%s %s' "$id" "$(date -d "$taken" +%s)"
}

# snapshot_paths JSON: the paths of the one snapshot restic listed, a line each.
snapshot_paths() {
  grep -o '"paths":\[[^]]*\]' <<<"$1" | head -n 1 |
    sed 's/^"paths":\[//; s/\]$//' | tr ',' '\n' | sed 's/^"//; s/"$//'
}

# The sample's sources: "SNAPSHOT<TAB>EPOCH<TAB>VOLUME DIR", a line each.
sources=()
snapshot=""
if ! repository_turn "$lock_wait"; then
  warn "no turn on the repository"
  snapshot_failed=1
elif ! repository_guard; then
  warn "the repository is missing or refused"
  snapshot_failed=1
else
  clear_stale_locks || warn "restic unlock failed"
  # The dumps: the latest complete snapshot of them, one id for every step.
  snapshots=$(restic_run snapshots --json --tag "$TAG,complete" --host "$host" \
    --path "$dumps_path" latest) || snapshots=""
  read -r snapshot snapshot_epoch <<<"$(snapshot_fields "$snapshots")" || true
  if [ -z "$snapshot" ]; then
    warn "no complete $TAG snapshot of $dumps_path on $host to restore"
    snapshot_failed=1
    snapshot_epoch=0
  else
    say "drilling snapshot ${snapshot:0:8} taken $(date -u -d "@$snapshot_epoch" +%Y-%m-%dT%H:%M:%SZ)"
    while IFS= read -r path; do
      [ "$path" = "$dumps_path" ] || sources+=("$snapshot"$'\t'"$snapshot_epoch"$'\t'"$path")
    done < <(snapshot_paths "$snapshots")
  fi
  # Each volume taken on its own (its containers stopped): its latest complete snapshot.
  listed=$(restic_run snapshots --json --tag "$TAG,complete" --host "$host") || listed=""
  for tag in $(grep -o '"hemma-volume=[A-Za-z0-9][A-Za-z0-9_.-]*"' <<<"$listed" | tr -d '"' | sort -u); do
    one=$(restic_run snapshots --json --tag "$TAG,complete,$tag" --host "$host" latest) || one=""
    read -r id epoch <<<"$(snapshot_fields "$one")" || true
    [ -n "${id:-}" ] || continue
    while IFS= read -r path; do
      sources+=("$id"$'\t'"$epoch"$'\t'"$path")
    done < <(snapshot_paths "$one")
  done
fi

# Databases.
dumps=()
if [ "$snapshot_failed" -eq 0 ]; then
  if restic_run restore "$snapshot" --target "$work/dumps" --include "$dumps_path" >/dev/null; then
    for dump in "$work/dumps$dumps_path"/*.dump; do
      [ ! -e "$dump" ] || dumps+=("$dump")
    done
  else
    warn "restic restore of the dumps failed"
    snapshot_failed=1
  fi
fi

restored_dbs=" "
for dump in "${dumps[@]}"; do
  database=$(basename "$dump" .dump)
  if ! [[ $database =~ $NAME_RE ]]; then
    warn "skipping $dump: not a database name"
    continue
  fi
  db_failures[$database]=${db_failures[$database]:-0}
  scratch_db="drill_$database"
  # A scratch database a killed drill left behind; its NOTICE when there is none is noise.
  "$docker" exec "$postgres" dropdb -U postgres --if-exists "$scratch_db" 2>/dev/null || true
  if ! "$docker" exec "$postgres" createdb -U postgres "$scratch_db"; then
    warn "could not create $scratch_db"
    fail_db "$database"
    continue
  fi
  created+=("$scratch_db")
  if "$docker" exec -i "$postgres" pg_restore -U postgres --no-owner --no-privileges \
    --exit-on-error -d "$scratch_db" <"$dump"; then
    restored_dbs+="$database "
    say "restored $database into $scratch_db"
    for i in "${!probe_dbs[@]}"; do
      [ "${probe_dbs[$i]}" = "$database" ] || continue
      # Only pass or fail is logged: a probe's answer may be app data.
      if answer=$("$docker" exec "$postgres" psql -U postgres -d "$scratch_db" -At \
        -v ON_ERROR_STOP=1 -c "${probe_sqls[$i]}") &&
        first=$(head -n 1 <<<"$answer") &&
        [ -n "$first" ] && [ "$first" != 0 ] && [ "$first" != f ]; then
        say "probe $((i + 1)) on $database passed"
      else
        warn "probe $((i + 1)) on $database failed"
        fail_db "$database"
      fi
    done
    if has_checks "$database"; then
      if hand_over "$database" "$scratch_db"; then
        run_checks "$database" "$scratch_db"
      else
        warn "could not hand $scratch_db to the owner of $database"
        fail_db "$database"
      fi
    fi
  else
    warn "pg_restore of $database failed: the dump is damaged or incomplete"
    fail_db "$database"
  fi
  drop_scratch "$scratch_db" || fail_db "$database"
done
for i in "${!probe_dbs[@]}"; do
  database=${probe_dbs[$i]}
  if [[ $restored_dbs != *" $database "* ]] && [ -z "${db_failures[$database]:-}" ]; then
    warn "the snapshot has no dump of $database"
    fail_db "$database"
  fi
done

# Volumes: a random sample of files, compared with live files unchanged since their
# snapshot. Paths that JSON had to escape, or that restic would read as a pattern,
# are left out.
if [ "$snapshot_failed" -eq 0 ] && [ "$sample" -gt 0 ] && [ "${#sources[@]}" -gt 0 ]; then
  : >"$work/files"
  for id in $(printf '%s\n' "${sources[@]}" | cut -f 1 | sort -u); do
    epoch="" dirs=()
    for line in "${sources[@]}"; do
      IFS=$'\t' read -r source_id source_epoch dir <<<"$line"
      [ "$source_id" = "$id" ] || continue
      epoch=$source_epoch dirs+=("$dir")
    done
    if restic_run ls --json "$id" "${dirs[@]}" >"$work/ls.json"; then
      grep '"type":"file"' "$work/ls.json" | grep -o '"path":"[^"\\]*"' | cut -d '"' -f 4 |
        grep -v '[][*?]' | sed "s/^/$id\t$epoch\t/" >>"$work/files" || true
    else
      warn "restic ls of snapshot ${id:0:8} failed"
      sample_failures=$((sample_failures + 1))
    fi
  done
  mapfile -t picked < <(shuf -n "$sample" "$work/files" || true)
  for id in $(printf '%s\n' "${picked[@]}" | cut -f 1 | sort -u); do
    includes=()
    for line in "${picked[@]}"; do
      IFS=$'\t' read -r source_id _ path <<<"$line"
      [ "$source_id" != "$id" ] || includes+=(--include "$path")
    done
    if ! restic_run restore "$id" --target "$work/sample/$id" "${includes[@]}" >/dev/null; then
      warn "restic restore of the sample from ${id:0:8} failed"
      sample_failures=$((sample_failures + 1))
    fi
  done
  for line in "${picked[@]}"; do
    IFS=$'\t' read -r id epoch path <<<"$line"
    copy="$work/sample/$id$path"
    if [ ! -f "$copy" ]; then
      warn "$path was not restored"
      sample_failures=$((sample_failures + 1))
    elif [ ! -f "$path" ] || [ "$(stat -c %Y "$path")" -ge "$epoch" ]; then
      sample_skipped=$((sample_skipped + 1))
    elif cmp -s "$copy" "$path"; then
      sample_match=$((sample_match + 1))
    else
      warn "$path differs from its copy in snapshot ${id:0:8}"
      sample_mismatch=$((sample_mismatch + 1))
      sample_failures=$((sample_failures + 1))
    fi
  done
  [ "${#picked[@]}" -eq 0 ] ||
    say "sampled ${#picked[@]} file(s): $sample_match match, $sample_skipped changed since, $sample_mismatch differ"
fi

success=1
[ "$snapshot_failed" -eq 0 ] && [ "$sample_failures" -eq 0 ] || success=0
for database in "${!db_failures[@]}"; do
  [ "${db_failures[$database]}" -eq 0 ] || success=0
done
write_metrics "$success"
finished=1
if [ "$success" -eq 1 ]; then
  say "drill passed"
  exit 0
fi
warn "drill failed"
exit 1
