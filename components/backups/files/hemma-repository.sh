#!/usr/bin/env bash
# Create Hemma's restic repository, once. This is the only step that creates one:
# the nightly backup, the check and the drill fail on a repository that is not
# there instead of starting a new, empty one. `pulumi up` runs it once, after the
# backup's files are installed, and the state records that it ran.
#
#   hemma-repository.sh init [--env FILE] [--cache DIR] [--lock FILE] [--system-disk]
#
# A repository that exists already is left as it is (exit 0); one that exists but
# cannot be opened (a wrong password) is an error, and nothing is written. Either way
# the repository's id is recorded beside the env file: the jobs use no other. A local
# repository must sit on a filesystem other than the system disk's (the filesystem
# of /): a backup disk that did not mount leaves its empty mount point there.
# --system-disk accepts the system disk on purpose and leaves a marker in the
# repository, which the jobs look for (hemma-restic.sh).
set -euo pipefail
umask 077

here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=components/backups/files/hemma-restic.sh
. "$here/hemma-restic.sh"

say() { printf 'hemma-repository: %s\n' "$*"; }
warn() { printf 'hemma-repository: %s\n' "$*" >&2; }
die() { warn "$*"; exit 2; }
usage() {
  echo 'usage: hemma-repository.sh init [--env FILE] [--cache DIR] [--lock FILE] [--system-disk]' >&2
  exit 2
}

if [ "$#" -eq 0 ] || [ "$1" != init ]; then usage; fi
shift
env_file=/etc/hemma/restic.env cache=/var/cache/hemma-restic lock=/run/lock/hemma-restic.lock
system_disk=0
while [ "$#" -gt 0 ]; do
  case $1 in
    --system-disk) system_disk=1; shift; continue ;;
    -h | --help) usage ;;
  esac
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --env) env_file=$2 ;;
    --cache) cache=$2 ;;
    --lock) lock=$2 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done

[ -f "$env_file" ] || die "cannot read $env_file"
if [ -n "$(find "$env_file" -maxdepth 0 -perm /077)" ]; then
  die "$env_file is readable by others: it holds the repository password (chmod 600)"
fi
restic_setup "$env_file" "$cache" "$lock"
repository_turn 600 || exit 1

path=$(repository_path)

# The nearest directory that exists: where a new repository's files would land.
existing_parent() {
  local dir=$1
  while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
  printf '%s' "$dir"
}

record_id() {
  local id
  id=$(repository_id)
  [ -n "$id" ] || die "cannot read the id of the repository (restic cat config)"
  printf '%s\n' "$id" >"$(repository_id_file)"
  say "recorded the repository's id ${id:0:8} in $(repository_id_file)"
}

mark_system_disk() {
  printf 'This restic repository is on the system disk on purpose: hemma-repository.sh init --system-disk, %s.\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$path/$SYSTEM_DISK_MARKER"
  say "marked $path as kept on the system disk"
}

rc=0
err=$(restic_run cat config 2>&1 >/dev/null) || rc=$?
if [ "$rc" -eq 0 ]; then
  if [ -n "$path" ] && on_system_disk "$path" && [ ! -f "$path/$SYSTEM_DISK_MARKER" ]; then
    if [ "$system_disk" -eq 0 ]; then
      die "the repository $path exists, but on the system disk (the filesystem of /): mount the backup disk there, or keep it on the system disk on purpose (--system-disk)"
    fi
    mark_system_disk
  fi
  say "the repository exists already"
  record_id
  exit 0
fi

if [ -n "$path" ]; then
  if [ -e "$path/config" ]; then
    printf '%s\n' "$err" >&2
    die "$path holds a repository that cannot be opened (restic exit $rc): nothing was changed"
  fi
  if [ -d "$path" ] && [ -n "$(ls -A "$path")" ]; then
    die "$path is not empty and holds no repository: nothing was changed"
  fi
  where=$(existing_parent "$path")
  if on_system_disk "$where" && [ "$system_disk" -eq 0 ]; then
    die "$path would be on the system disk ($where is on the filesystem of /): mount the backup disk first, or keep the backups on the system disk on purpose (--system-disk)"
  fi
else
  case $rc:$err in
    10:* | *"no such file or directory"* | *"does not exist"* | *NoSuchBucket* | *NoSuchKey*) ;;
    *)
      printf '%s\n' "$err" >&2
      die "the repository cannot be opened (restic exit $rc), and it does not say it is missing: nothing was created"
      ;;
  esac
fi

restic_run init >/dev/null
if [ -n "$path" ] && [ "$system_disk" -eq 1 ] && on_system_disk "$path"; then
  mark_system_disk
fi
say "created the repository"
record_id
