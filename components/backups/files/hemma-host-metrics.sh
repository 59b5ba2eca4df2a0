#!/usr/bin/env bash
# Hemma's host facts for Prometheus, every minute: container health, restarts and
# state, failed systemd units, and the size and free space of real filesystems,
# written atomically to DIR/hemma_host.prom for the textfile collector.
#
#   hemma-host-metrics.sh --docker DOCKER --metrics DIR
#
# Containers are those with a restart policy other than "no": every declared
# service has one, while one-off containers (migrations, Skriptoteket's runners)
# would only leave finished ones alerting and a new series per run. One without a
# health check counts as healthy while it runs. A source that cannot be read, or
# hangs, is reported in hemma_host_metrics_errors{source} instead of failing the file.
set -uo pipefail

say() { printf 'hemma-host-metrics: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

docker="" metrics=""
while [ "$#" -gt 0 ]; do
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --docker) docker=$2 ;;
    --metrics) metrics=$2 ;;
    *) die "unknown argument: $1 (usage: hemma-host-metrics.sh --docker DOCKER --metrics DIR)" ;;
  esac
  shift 2
done
[ -n "$docker" ] || die "--docker is required"
[ -n "$metrics" ] || die "--metrics is required"

label() {
  local value=$1
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  printf '%s' "$value"
}

declare -A errors=([docker]=0 [systemd]=0 [filesystems]=0)
healthy=() restarts=() running=()

# NAME|RUNNING|RESTARTS|RESTART POLICY|HEALTH; a container without a health check has
# no .State.Health, and asking for its Status would fail the whole inspect.
format='{{.Name}}|{{.State.Running}}|{{.RestartCount}}|{{.HostConfig.RestartPolicy.Name}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}'
if names=$(timeout 30 "$docker" ps -a --format '{{.Names}}'); then
  mapfile -t containers < <(grep -v '^$' <<<"$names")
  if [ "${#containers[@]}" -gt 0 ]; then
    # A container removed since `ps` fails inspect for itself only: the rest still count.
    facts=$(timeout 30 "$docker" inspect -f "$format" "${containers[@]}") || true
    if [ -n "$facts" ]; then
      while IFS='|' read -r name is_running restart_count policy health; do
        [ -n "$name" ] || continue
        name=${name#/}
        [ "${policy:-no}" != no ] || continue
        up=0
        [ "$is_running" != true ] || up=1
        ok=$up
        [ -z "$health" ] || [ "$health" = healthy ] || ok=0
        [[ $restart_count =~ ^[0-9]+$ ]] || restart_count=0
        name=$(label "$name")
        healthy+=("hemma_container_healthy{name=\"$name\"} $ok")
        running+=("hemma_container_running{name=\"$name\"} $up")
        restarts+=("hemma_container_restarts{name=\"$name\"} $restart_count")
      done <<<"$facts"
    else
      errors[docker]=1
    fi
  fi
else
  errors[docker]=1
fi

failed_units=()
if units=$(timeout 30 systemctl --failed --plain --no-legend --full); then
  while read -r unit second _; do
    # Some systemd versions keep the bullet even with --plain.
    [ "$unit" != "●" ] || unit=$second
    [ -n "$unit" ] || continue
    failed_units+=("$unit")
  done <<<"$units"
else
  errors[systemd]=1
fi

filesystems=()
declare -A seen=()
# df exits non-zero when one mount cannot be read; the rest of its lines still count.
table=$(timeout 30 df -B1 --output=target,size,avail -x tmpfs -x devtmpfs -x squashfs -x overlay) ||
  errors[filesystems]=1
while IFS= read -r line; do
  # A mount point may hold spaces: the two numbers are taken from the right.
  avail=${line##* }
  rest=${line% *}
  rest=${rest%"${rest##*[! ]}"}
  size=${rest##* }
  target=${rest% *}
  target=${target%"${target##*[! ]}"}
  [[ $size =~ ^[0-9]+$ && $avail =~ ^[0-9]+$ && -n $target ]] || continue
  [ -z "${seen[$target]:-}" ] || continue
  seen[$target]=1
  target=$(label "$target")
  filesystems+=("hemma_filesystem_size_bytes{mountpoint=\"$target\"} $size")
  filesystems+=("hemma_filesystem_avail_bytes{mountpoint=\"$target\"} $avail")
done < <(tail -n +2 <<<"$table")

emit() {
  local name=$1 help=$2
  shift 2
  echo "# HELP $name $help"
  echo "# TYPE $name gauge"
  [ "$#" -eq 0 ] || printf '%s\n' "$@"
}

# node-exporter reads it as nobody: the directory and its parents stay 0755.
(umask 022 && mkdir -p "$metrics") || exit 1
tmp=$(mktemp "$metrics/.hemma_host.prom.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
size_lines=() avail_lines=()
for line in "${filesystems[@]}"; do
  case $line in
    hemma_filesystem_size_bytes*) size_lines+=("$line") ;;
    *) avail_lines+=("$line") ;;
  esac
done
unit_lines=()
for unit in "${failed_units[@]}"; do
  unit_lines+=("hemma_systemd_unit_failed{unit=\"$(label "$unit")\"} 1")
done
{
  emit hemma_container_healthy "1 when the container runs and its health check (if any) passes." \
    "${healthy[@]}"
  emit hemma_container_running "1 when the container runs." "${running[@]}"
  emit hemma_container_restarts "How often Docker restarted the container." "${restarts[@]}"
  emit hemma_systemd_unit_failed "1 for each systemd unit in the failed state." "${unit_lines[@]}"
  emit hemma_systemd_units_failed "How many systemd units are in the failed state." \
    "hemma_systemd_units_failed ${#failed_units[@]}"
  emit hemma_filesystem_size_bytes "Size of a real filesystem." "${size_lines[@]}"
  emit hemma_filesystem_avail_bytes "Bytes an unprivileged user may still write." "${avail_lines[@]}"
  emit hemma_host_metrics_errors "1 when a source could not be read on the last run." \
    "hemma_host_metrics_errors{source=\"docker\"} ${errors[docker]}" \
    "hemma_host_metrics_errors{source=\"systemd\"} ${errors[systemd]}" \
    "hemma_host_metrics_errors{source=\"filesystems\"} ${errors[filesystems]}"
  emit hemma_host_metrics_last_run_timestamp_seconds "When these host metrics were written." \
    "hemma_host_metrics_last_run_timestamp_seconds $(date +%s)"
} >"$tmp" || exit 1
chmod 0644 "$tmp"
mv -f "$tmp" "$metrics/hemma_host.prom" || exit 1
trap - EXIT
