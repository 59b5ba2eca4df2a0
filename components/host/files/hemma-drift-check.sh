#!/usr/bin/env bash
# Hemma's drift check: what a hand on the host changed that `pulumi refresh` cannot
# see, written as Prometheus textfile metrics for the alerts.
#
#   hemma-drift-check.sh --docker DOCKER --postgres CONTAINER --metrics DIR
#       --manifest FILE --grants FILE --containers FILE [--service-label LABEL]
#       [--database DB]... [--role ROLE]...
#
# - files: every file the program installs on the host (units, timers, scripts and
#   the jobs' other files), against the sha256 in FILE (sha256sum's own format,
#   "SHA256  PATH", a line starting with a backslash when PATH holds one or a line
#   end). A changed file and a missing one are drift, and so is a drop-in
#   (UNIT.d/*.conf under /etc or /run/systemd/system, what `systemctl edit` writes)
#   for a unit the manifest holds. HEMMA_ROOT (empty on Hemma)
#   is put before every path, so the check can look at a copy of a host.
# - grants: the declared databases' owners and privileges, the declared roles'
#   attributes, every superuser and every role membership (but the built-in roles'
#   among themselves) in shared-postgres, normalised into lines and compared with
#   --grants: a line more or a line less is drift. Inside each database, only what
#   was granted beyond the objects' built-in privileges (acldefault, or the initial
#   privileges PostgreSQL records in pg_init_privs) is listed. The declared model
#   grants nothing there, so any such line is drift.
# - containers: every container on the engine that --containers does not declare:
#   by name ("name NAME"), as a start-first copy ("service NAME": labelled
#   LABEL=NAME and named NAME-<12 hex digits>), or run from an image a declared
#   service starts containers of itself ("image REF", Skriptoteket's runners). The
#   backup, its check and the drill start no container of their own.
#
# It writes DIR/hemma_drift_host.prom atomically (mode 0644). Drift is reported
# there and exits 0; when a check could not run (docker or psql failed, a file
# it reads is missing) it says so on stderr, writes success 0, keeps the time of
# the last successful run, and exits 1. Bad arguments exit 2.
set -uo pipefail

say() { printf 'hemma-drift-check: %s\n' "$*"; }
warn() { printf 'hemma-drift-check: %s\n' "$*" >&2; }
die() { warn "$*"; exit 2; }

readonly NAME_RE='^[A-Za-z0-9][A-Za-z0-9_.-]*$'
readonly MAX_ITEMS=20
readonly ADMIN=postgres
readonly tab=$'\t'

root="${HEMMA_ROOT:-}"
docker="" postgres="" metrics="" manifest="" grants="" containers=""
service_label=education.hule.hemma.service
databases=() roles=()
while [ "$#" -gt 0 ]; do
  [ "$#" -ge 2 ] || die "$1 needs a value"
  case $1 in
    --docker) docker=$2 ;;
    --postgres) postgres=$2 ;;
    --metrics) metrics=$2 ;;
    --manifest) manifest=$2 ;;
    --grants) grants=$2 ;;
    --containers) containers=$2 ;;
    --service-label) service_label=$2 ;;
    --database) databases+=("$2") ;;
    --role) roles+=("$2") ;;
    *) die "unknown argument: $1" ;;
  esac
  shift 2
done
for required in docker postgres metrics manifest grants containers; do
  [ -n "${!required}" ] || die "--$required is required"
done
[[ $postgres =~ $NAME_RE ]] || die "bad --postgres: $postgres"
for name in "${databases[@]}" "${roles[@]}"; do
  [[ $name =~ $NAME_RE ]] || die "bad database or role name: $name"
done

failures=0
fail() {
  warn "$*"
  failures=$((failures + 1))
}

# Each kind's drifted items, NUL-separated in a file of their own.
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
declare -A checked=([file]=0 [grant]=0 [container]=0)
: >"$work/file" && : >"$work/grant" && : >"$work/container" || exit 1
drifted() {
  printf '%s\0' "$2" >>"$work/$1"
}

# sha256sum's escaping of a file name: \\ is a backslash, \n a line end, \r a CR.
unescape_path() {
  local rest=$1 c
  path=""
  while [ -n "$rest" ]; do
    c=${rest:0:1}
    rest=${rest:1}
    if [ "$c" = "\\" ]; then
      case ${rest:0:1} in
        "\\") path+="\\" ;;
        n) path+=$'\n' ;;
        r) path+=$'\r' ;;
        *) return 1 ;;
      esac
      rest=${rest:1}
    else
      path+=$c
    fi
  done
}

check_files() {
  local line want path actual escaped unit dir conf
  local -a units=()
  if [ ! -r "$manifest" ]; then
    fail "cannot read the manifest $manifest"
    return
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] || continue
    escaped=0
    if [ "${line:0:1}" = "\\" ]; then
      escaped=1
      line=${line:1}
    fi
    want=${line%%  *}
    path=${line#*  }
    if ! [[ $want =~ ^[0-9a-f]{64}$ ]] || [ "$path" = "$line" ]; then
      fail "the manifest $manifest has a line that is not SHA256  PATH"
      return
    fi
    if [ "$escaped" = 1 ] && ! unescape_path "$path"; then
      fail "the manifest $manifest has a path with a bad escape"
      return
    fi
    case $path in
      /etc/systemd/system/*.service | /etc/systemd/system/*.timer | /etc/systemd/system/*.socket)
        units+=("${path##*/}") ;;
    esac
    if [ ! -e "$root$path" ]; then
      say "file missing: $path"
      drifted file "$path"
    elif ! actual=$(sha256sum <"$root$path"); then
      fail "cannot read $path"
      return
    elif [ "${actual%% *}" != "$want" ]; then
      say "file changed: $path"
      drifted file "$path"
    fi
  done <"$manifest"
  # `systemctl edit UNIT` (and `--runtime`) leaves the unit file alone and writes a
  # drop-in beside it, which systemd reads after it: every *.conf there is drift.
  for unit in "${units[@]}"; do
    for dir in /etc/systemd/system /run/systemd/system; do
      for conf in "$root$dir/$unit.d"/*.conf; do
        [ -e "$conf" ] || continue
        say "drop-in not declared: ${conf#"$root"}"
        drifted file "${conf#"$root"}"
      done
    done
  done
  checked[file]=1
}

# Each row of facts is one text[] of fields; the last SELECT escapes each field (\ | and
# line ends), so a name holding any of them stays one field on one line.
lines_sql() {
  cat <<'SQL'
SELECT line FROM (
  SELECT array_to_string(ARRAY(
    SELECT replace(replace(replace(replace(f, E'\\', E'\\\\'), '|', E'\\|'),
      E'\n', E'\\n'), E'\r', E'\\r')
    FROM unnest(fields) WITH ORDINALITY AS u(f, i) ORDER BY i), '|') AS line
  FROM facts
) escaped ORDER BY line COLLATE "C";
SQL
}

# The server: every superuser, the declared roles' attributes, every membership but
# the built-in roles' among themselves, the declared databases' owners and privileges.
cluster_sql() {
  cat <<'SQL'
WITH declared_databases AS (
  SELECT unnest(string_to_array(:'databases', ',')) AS name
), declared_roles AS (
  SELECT unnest(string_to_array(:'roles', ',')) AS name
), facts(fields) AS (
  SELECT ARRAY['superuser', rolname::text] FROM pg_roles WHERE rolsuper
  UNION ALL
  SELECT ARRAY['role', r.rolname::text, concat_ws(',',
    CASE WHEN r.rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,
    CASE WHEN r.rolsuper THEN 'SUPERUSER' ELSE 'NOSUPERUSER' END,
    CASE WHEN r.rolcreatedb THEN 'CREATEDB' ELSE 'NOCREATEDB' END,
    CASE WHEN r.rolcreaterole THEN 'CREATEROLE' ELSE 'NOCREATEROLE' END,
    CASE WHEN r.rolreplication THEN 'REPLICATION' ELSE 'NOREPLICATION' END,
    CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END)]
  FROM pg_roles r JOIN declared_roles d ON d.name = r.rolname
  UNION ALL
  SELECT ARRAY['member', g.rolname::text, m.rolname::text]
  FROM pg_auth_members a
  JOIN pg_roles g ON g.oid = a.roleid
  JOIN pg_roles m ON m.oid = a.member
  WHERE NOT (g.rolname LIKE 'pg\_%' AND m.rolname LIKE 'pg\_%')
  UNION ALL
  SELECT ARRAY['owner', d.datname::text, pg_get_userbyid(d.datdba)::text]
  FROM pg_database d JOIN declared_databases x ON x.name = d.datname
  UNION ALL
  SELECT ARRAY[d.datname::text, 'database',
    CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee)::text END,
    a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END]
  FROM pg_database d JOIN declared_databases x ON x.name = d.datname,
    aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
)
SQL
  lines_sql
}

# One database: what each object's ACL holds beyond its built-in privileges (the
# initial ones PostgreSQL records, else the owner's defaults).
database_sql() {
  cat <<'SQL'
WITH schemas AS (
  SELECT oid, nspname, nspowner, nspacl FROM pg_namespace
  WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
), granted(object, acl, base) AS (
  SELECT 'schema ' || s.nspname, s.nspacl,
    coalesce(i.initprivs, acldefault('n', s.nspowner))
  FROM schemas s LEFT JOIN pg_init_privs i
    ON i.objoid = s.oid AND i.classoid = 'pg_namespace'::regclass AND i.objsubid = 0
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view '
      WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
    || s.nspname || '.' || c.relname, c.relacl,
    coalesce(i.initprivs,
      acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
  FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace LEFT JOIN pg_init_privs i
    ON i.objoid = c.oid AND i.classoid = 'pg_class'::regclass AND i.objsubid = 0
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'column ' || s.nspname || '.' || c.relname || '.' || a.attname, a.attacl,
    i.initprivs
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN schemas s ON s.oid = c.relnamespace LEFT JOIN pg_init_privs i
    ON i.objoid = c.oid AND i.classoid = 'pg_class'::regclass AND i.objsubid = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END || s.nspname || '.'
    || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proacl,
    coalesce(i.initprivs, acldefault('f', p.proowner))
  FROM pg_proc p JOIN schemas s ON s.oid = p.pronamespace LEFT JOIN pg_init_privs i
    ON i.objoid = p.oid AND i.classoid = 'pg_proc'::regclass AND i.objsubid = 0
  UNION ALL
  SELECT 'default privileges of ' || pg_get_userbyid(d.defaclrole) || ' on '
    || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
      WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'
      ELSE d.defaclobjtype::text END || coalesce(' in schema ' || n.nspname, ''),
    d.defaclacl,
    -- A global entry holds the whole ACL, one per schema only what it adds.
    CASE WHEN d.defaclnamespace = 0 THEN acldefault(
      CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype::text END::"char",
      d.defaclrole) END
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
), added AS (
  SELECT g.object, e.grantee, e.privilege_type, e.is_grantable
  FROM granted g, aclexplode(g.acl) e WHERE g.acl IS NOT NULL
  EXCEPT
  SELECT g.object, b.grantee, b.privilege_type, b.is_grantable
  FROM granted g, aclexplode(g.base) b WHERE g.base IS NOT NULL
), facts(fields) AS (
  SELECT ARRAY[current_database()::text, object,
    CASE WHEN grantee = 0 THEN 'public' ELSE pg_get_userbyid(grantee)::text END,
    privilege_type || CASE WHEN is_grantable THEN ' WITH GRANT OPTION' ELSE '' END]
  FROM added
)
SQL
  lines_sql
}

# psql DATABASE [ARGS...] < SQL: inside shared-postgres, as the image's trusted local
# superuser; the SQL arrives on stdin (the snap's docker reads no host file).
psql_in() {
  local database=$1
  shift
  timeout 120 "$docker" exec -i "$postgres" \
    psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$ADMIN" -d "$database" "$@"
}

check_grants() {
  local listed existing database
  if [ ! -r "$grants" ]; then
    fail "cannot read the declared grants $grants"
    return
  fi
  listed=$(IFS=,; printf '%s' "${databases[*]}")
  if ! psql_in postgres -v "databases=$listed" -v "roles=$(IFS=,; printf '%s' "${roles[*]}")" \
    < <(cluster_sql) >"$work/actual-grants"; then
    fail "psql in $postgres failed: the grants were not checked"
    return
  fi
  if ! existing=$(psql_in postgres -v "databases=$listed" <<<"
    SELECT datname FROM pg_database WHERE datallowconn
    AND datname = ANY (string_to_array(:'databases', ',')) ORDER BY 1;"); then
    fail "psql in $postgres failed: the grants were not checked"
    return
  fi
  while IFS= read -r database; do
    [ -n "$database" ] || continue
    if ! psql_in "$database" < <(database_sql) >>"$work/actual-grants"; then
      fail "psql in $postgres failed on $database: the grants were not checked"
      return
    fi
  done <<<"$existing"
  LC_ALL=C sort -u "$work/actual-grants" | grep -v '^$' >"$work/actual" || true
  LC_ALL=C sort -u "$grants" | grep -v '^$' >"$work/expected" || true
  while IFS= read -r line; do
    say "grant not declared: $line"
    drifted grant "$line"
  done < <(LC_ALL=C comm -13 "$work/expected" "$work/actual")
  while IFS= read -r line; do
    say "declared grant missing: $line"
    drifted grant "$line"
  done < <(LC_ALL=C comm -23 "$work/expected" "$work/actual")
  checked[grant]=1
}

check_containers() {
  local line kind value name image rest listing
  local -A names=() images=() copies=()
  local services=()
  if [ ! -r "$containers" ]; then
    fail "cannot read the declared containers $containers"
    return
  fi
  while IFS=' ' read -r kind value || [ -n "$kind" ]; do
    case $kind in
      # Keys carry a prefix: bash refuses an empty one.
      name) names["=$value"]=1 ;;
      service) services+=("$value") ;;
      image) images["=$value"]=1 ;;
      '') ;;
      *)
        fail "the declared containers $containers have an unknown line: $kind"
        return
        ;;
    esac
  done <"$containers"
  if ! listing=$(timeout 60 "$docker" ps -a --format "{{.Names}}$tab{{.Image}}"); then
    fail "docker ps failed: the containers were not checked"
    return
  fi
  # A start-first copy: labelled with its service (the daemon matches the label) and
  # named SERVICE-<12 hex digits>, as the program names it.
  for value in "${services[@]}"; do
    if ! rest=$(timeout 60 "$docker" ps -a --filter "label=$service_label=$value" \
      --format '{{.Names}}'); then
      fail "docker ps failed: the containers were not checked"
      return
    fi
    while IFS= read -r name; do
      [[ $name == "$value-"* && ${name#"$value-"} =~ ^[0-9a-f]{12}$ ]] && copies["=$name"]=1
    done <<<"$rest"
  done
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    name=${line%%"$tab"*}
    image=""
    [ "$name" = "$line" ] || image=${line#*"$tab"}
    [ -z "${names["=$name"]:-}" ] || continue
    [ -z "${copies["=$name"]:-}" ] || continue
    [ -z "$image" ] || [ -z "${images["=$image"]:-}" ] || continue
    say "container not declared: $name (image $image)"
    drifted container "$name"
  done <<<"$listing"
  checked[container]=1
}

label() {
  local value=$1
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  printf '%s' "$value"
}

metric_file="$metrics/hemma_drift_host.prom"
previous_success() {
  [ -f "$metric_file" ] || return 0
  sed -n 's/^hemma_drift_last_success_timestamp_seconds{source="host"} \([0-9][0-9.e+]*\)$/\1/p' \
    "$metric_file" | tail -n 1
}

write_metrics() {
  local success=$1 now last tmp kind count shown item
  local -a items
  now=$(date +%s)
  last=$(previous_success)
  [ "$success" -eq 0 ] || last=$now
  # node-exporter reads it as nobody: the directory and its parents stay 0755.
  (umask 022 && mkdir -p "$metrics") || return 1
  tmp=$(mktemp "$metrics/.hemma_drift_host.prom.XXXXXX") || return 1
  {
    echo '# HELP hemma_drift_check_last_run_timestamp_seconds When the drift check last ran.'
    echo '# TYPE hemma_drift_check_last_run_timestamp_seconds gauge'
    echo "hemma_drift_check_last_run_timestamp_seconds{source=\"host\"} $now"
    echo '# HELP hemma_drift_check_success Whether the last drift check could look at everything (1) or not (0).'
    echo '# TYPE hemma_drift_check_success gauge'
    echo "hemma_drift_check_success{source=\"host\"} $success"
    echo '# HELP hemma_drift_last_success_timestamp_seconds When a drift check last looked at everything.'
    echo '# TYPE hemma_drift_last_success_timestamp_seconds gauge'
    echo "hemma_drift_last_success_timestamp_seconds{source=\"host\"} ${last:-0}"
    echo '# HELP hemma_drift_items What the last drift check found changed by hand, by kind.'
    echo '# TYPE hemma_drift_items gauge'
    for kind in file grant container; do
      [ "${checked[$kind]}" = 1 ] || continue
      mapfile -d '' -t items <"$work/$kind"
      echo "hemma_drift_items{source=\"host\",kind=\"$kind\"} ${#items[@]}"
    done
    echo '# HELP hemma_drift_item One thing the last drift check found changed by hand.'
    echo '# TYPE hemma_drift_item gauge'
    for kind in file grant container; do
      [ "${checked[$kind]}" = 1 ] || continue
      mapfile -d '' -t items <"$work/$kind"
      count=${#items[@]}
      shown=0
      for item in "${items[@]}"; do
        [ "$shown" -lt "$MAX_ITEMS" ] || break
        echo "hemma_drift_item{source=\"host\",kind=\"$kind\",name=\"$(label "$item")\"} 1"
        shown=$((shown + 1))
      done
      if [ "$count" -gt "$MAX_ITEMS" ]; then
        echo "hemma_drift_item{source=\"host\",kind=\"$kind\",name=\"... and $((count - MAX_ITEMS)) more\"} 1"
      fi
    done
  } >"$tmp" || { rm -f "$tmp"; return 1; }
  # The textfile collector runs as another user; the file says nothing secret.
  if ! chmod 0644 "$tmp" || ! mv -f "$tmp" "$metric_file"; then
    rm -f "$tmp"
    return 1
  fi
}

check_files
check_grants
check_containers

success=1
[ "$failures" -eq 0 ] || success=0
if ! write_metrics "$success"; then
  warn "could not write $metric_file"
  exit 1
fi
if [ "$success" -eq 0 ]; then
  warn "the drift check could not run in full ($failures check(s) failed): see above"
  exit 1
fi
total=0
for kind in file grant container; do
  mapfile -d '' -t found <"$work/$kind"
  total=$((total + ${#found[@]}))
done
say "done: $total item(s) of drift"
exit 0
