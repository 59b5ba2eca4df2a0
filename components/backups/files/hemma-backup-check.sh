#!/usr/bin/env bash
# restic's own integrity check of Hemma's backup repository, on a timer: the
# structure always, and a subset of the data each time, so that every pack is read
# over a few weeks. Prometheus textfile metrics say how it went.
#
#   hemma-backup-check.sh --env FILE --metrics DIR [--cache DIR] [--lock FILE]
#                         [--lock-wait SECONDS] [--read-data-subset PERCENT]
#
# It waits its turn behind the other jobs, clears the stale locks a killed run left,
# and checks only a repository that is where it belongs (hemma-restic.sh). It reads
# the repository's own index and trees, not the copies in the jobs' cache: restic
# check builds a temporary cache for that, "to verify that the data stored in the
# repository is intact" (restic doc/045_working_with_repos.rst), inside the jobs' one
# cache directory, and removes it afterwards.
set -euo pipefail
umask 077

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=components/backups/files/hemma-restic.sh
. "$here/hemma-restic.sh"

warn() { printf 'hemma-backup-check: %s\n' "$*" >&2; }
die() { warn "$*"; exit 2; }

env_file="" metrics="" subset=5
cache=/var/cache/hemma-restic lock=/run/lock/hemma-restic.lock lock_wait=43200
while [ "$#" -gt 0 ]; do
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --env) env_file=$2 ;;
    --metrics) metrics=$2 ;;
    --cache) cache=$2 ;;
    --lock) lock=$2 ;;
    --lock-wait) lock_wait=$2 ;;
    --read-data-subset) subset=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
if [ -z "$env_file" ] || [ -z "$metrics" ]; then die "--env and --metrics are required"; fi
[[ $subset =~ ^[0-9]{1,2}$|^100$ ]] || die "--read-data-subset is a percentage"
[[ $lock_wait =~ ^[0-9]+$ ]] || die "--lock-wait must be a whole number"
[ -f "$env_file" ] || die "cannot read $env_file"
[ "$(stat -c %a "$env_file")" = 600 ] || die "$env_file must be mode 0600"
restic_setup "$env_file" "$cache" "$lock"

ok=0
if ! repository_turn "$lock_wait"; then
  warn "no turn on the repository"
elif ! repository_guard; then
  warn "the repository is missing or refused"
else
  clear_stale_locks || warn "restic unlock failed"
  if restic_run check --read-data-subset="${subset}%"; then
    ok=1
  else
    warn "restic check failed"
  fi
fi

# node-exporter reads it as nobody: the directory and its parents stay 0755.
(umask 022 && mkdir -p "$metrics")
file="$metrics/hemma_backup_check.prom"
last_success=0
if [ -r "$file" ]; then
  last_success=$(awk '$1 == "hemma_backup_check_last_success_timestamp_seconds" { print $2 }' "$file")
  last_success=${last_success:-0}
fi
now=$(date +%s)
[ "$ok" -eq 0 ] || last_success=$now
tmp=$(mktemp "$metrics/.hemma_backup_check.XXXXXX")
{
  echo '# HELP hemma_backup_check_last_run_success Whether the last restic check passed.'
  echo '# TYPE hemma_backup_check_last_run_success gauge'
  echo "hemma_backup_check_last_run_success $ok"
  echo '# HELP hemma_backup_check_last_success_timestamp_seconds When restic check last passed.'
  echo '# TYPE hemma_backup_check_last_success_timestamp_seconds gauge'
  echo "hemma_backup_check_last_success_timestamp_seconds $last_success"
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$file"
[ "$ok" -eq 1 ]
