# shellcheck shell=bash
# How every Hemma job reaches the restic repository. Sourced (never run) by
# hemma-backup.sh, hemma-backup-check.sh, hemma-drill.sh and hemma-repository.sh,
# which call restic_setup ENV_FILE CACHE LOCK first.
#
# - restic_run ARGS...: restic with the root-only env file's variables, read in a
#   subshell, so no other program sees them and no argv carries them; always with
#   the one cache the jobs share (CACHE), so none of them starts cold.
# - repository_turn SECONDS: the jobs take turns on the repository. Each holds an
#   flock on LOCK while it uses the repository, so a backup and a check that systemd
#   starts together (Persistent=true timers after a power cut) run one after the
#   other instead of one failing at once on the other's restic lock.
# - clear_stale_locks: removes the restic locks that restic itself calls stale (made
#   on this host by a process that is gone, or not refreshed for 30 minutes;
#   internal/repository/lock_file.go). A killed run leaves its lock behind and restic
#   never removes one by itself, so every later prune and check would fail.
# - repository_guard: the repository must already exist; it is never created here
#   (hemma-repository.sh init does that, once). A local one must sit on a filesystem
#   other than the system disk's, or carry the marker that init --system-disk wrote:
#   a backup disk that did not mount leaves its mount point on the system disk. And it
#   must be the repository init made or adopted: its id (restic cat config) is the one
#   init recorded beside the env file, so an old repository that reappears when a disk
#   does not mount, or another one put in its place, is refused too.

readonly SYSTEM_DISK_MARKER=hemma-on-system-disk
readonly ID_FILE_NAME=restic-repository.id

hemma_restic_env="" hemma_restic_cache="" hemma_restic_lock=""

restic_setup() {
  hemma_restic_env=$1 hemma_restic_cache=$2 hemma_restic_lock=$3
}

restic_run() (
  # Set before the file is read: its variables can change neither which restic
  # runs nor its arguments.
  set -- "$(command -v restic || echo restic)" "$@"
  export RESTIC_CACHE_DIR="$hemma_restic_cache"
  set -a
  # shellcheck disable=SC1090  # the operator's env file, root-only
  . "$hemma_restic_env"
  set +a
  exec "$@"
)

repository_turn() {
  local wait=$1
  mkdir -p "$(dirname "$hemma_restic_lock")"
  exec {hemma_restic_lock_fd}>>"$hemma_restic_lock"
  if ! flock -n "$hemma_restic_lock_fd"; then
    printf 'waiting for the job that holds %s\n' "$hemma_restic_lock"
    if ! flock -w "$wait" "$hemma_restic_lock_fd"; then
      printf 'another job held %s for more than %s s\n' "$hemma_restic_lock" "$wait" >&2
      return 1
    fi
  fi
}

clear_stale_locks() {
  local path
  path=$(repository_path)
  # A local repository shows its locks: no lock, nothing to clear.
  if [ -n "$path" ] && [ -z "$(ls -A "$path/locks" 2>/dev/null)" ]; then
    return 0
  fi
  restic_run unlock
}

# The local path of the repository the env file names, or nothing for a remote one.
repository_path() {
  local repository
  # The env file is read in a subshell; only the repository's name comes out.
  repository=$(
    set -a
    # shellcheck disable=SC1090
    . "$hemma_restic_env"
    printf '%s' "${RESTIC_REPOSITORY:-}"
  )
  case $repository in
    local:*) printf '%s' "${repository#local:}" ;;
    /*) printf '%s' "$repository" ;;
  esac
}

on_system_disk() {
  [ "$(stat -L -c %d "$1")" = "$(stat -L -c %d /)" ]
}

# Where init records the repository's id: beside the env file, root-only.
repository_id_file() {
  printf '%s/%s' "$(dirname "$hemma_restic_env")" "$ID_FILE_NAME"
}

# The id in a repository's config (restic cat config), read from stdin.
config_id() {
  grep -o '"id": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}' || true
}

# The id of the repository the env file names, or nothing.
repository_id() {
  restic_run cat config 2>/dev/null | config_id
}

repository_guard() {
  local path rc=0 err config hemma_restic_err
  path=$(repository_path)
  if [ -n "$path" ]; then
    if [ ! -d "$path" ]; then
      printf '%s does not exist: is the backup disk mounted? A repository is never created by a job (hemma-repository.sh init)\n' "$path" >&2
      return 1
    fi
    if [ ! -f "$path/config" ]; then
      printf '%s holds no restic repository: is the backup disk mounted? A repository is never created by a job (hemma-repository.sh init)\n' "$path" >&2
      return 1
    fi
    if on_system_disk "$path" && [ ! -f "$path/$SYSTEM_DISK_MARKER" ]; then
      printf '%s is on the system disk (the filesystem of /), not on a backup disk, and hemma-repository.sh init --system-disk did not make it: is the backup disk mounted?\n' "$path" >&2
      return 1
    fi
  fi
  hemma_restic_err=$(mktemp)
  config=$(restic_run cat config 2>"$hemma_restic_err") || rc=$?
  err=$(cat "$hemma_restic_err")
  rm -f "$hemma_restic_err"
  if [ "$rc" -eq 0 ]; then
    local recorded found
    recorded=$(cat "$(repository_id_file)" 2>/dev/null || true)
    found=$(config_id <<<"$config")
    if [ -z "$recorded" ]; then
      printf 'hemma-repository.sh init has not recorded this repository (%s): run it once\n' \
        "$(repository_id_file)" >&2
      return 1
    fi
    if [ "$found" != "$recorded" ]; then
      printf 'the repository here (id %.8s) is not the one hemma-repository.sh init made or adopted (id %.8s): is the backup disk mounted?\n' \
        "${found:-?}" "$recorded" >&2
      return 1
    fi
    return 0
  fi
  printf '%s\n' "$err" >&2
  case $rc:$err in
    10:* | *"no such file or directory"* | *"does not exist"* | *NoSuchBucket* | *NoSuchKey*)
      echo 'the repository does not exist: it is never created by a job (hemma-repository.sh init)' >&2
      ;;
    *) echo "the repository cannot be opened (restic exit $rc)" >&2 ;;
  esac
  return 1
}
