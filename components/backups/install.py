"""What the backup installs on Hemma beside its units, and what it needs there.

The scripts and SQL files of ``files/`` (root-owned, under ``/usr/local/lib/hemma``),
and the check an install runs first: restic new enough for the scripts, and flock.
Pure functions over the standard library.
"""

from __future__ import annotations

from importlib import resources

from components.backups.restic import (
    BACKUP_SCRIPT,
    CHECK_SCRIPT,
    CREATE_COPY_SQL,
    DRILL_SCRIPT,
    HAND_OVER_SQL,
    HOST_METRICS_SCRIPT,
    REPOSITORY_SCRIPT,
    RESTIC_LIB,
    SWAP_SQL,
)

RESTIC_MIN_VERSION = (0, 12, 1)
"""What the scripts use: ``check --read-data-subset=N%`` (0.12.0, with its fix for an
empty repository in 0.12.1); ``unlock``, ``tag``, ``snapshots latest`` with filters and
the JSON output are older (restic's CHANGELOG.md)."""


def script_text(name: str) -> str:
    """One of files/: hemma-backup.sh, hemma-drill.sh, hemma-restic.sh, ..."""
    return resources.files("components.backups").joinpath("files", name).read_text()


RESTIC_FILES = {
    BACKUP_SCRIPT: "0755",
    CHECK_SCRIPT: "0755",
    DRILL_SCRIPT: "0755",
    REPOSITORY_SCRIPT: "0755",
    RESTIC_LIB: "0644",
    HAND_OVER_SQL: "0644",
    SWAP_SQL: "0644",
    CREATE_COPY_SQL: "0644",
}
"""What the backup job installs beside its units (root-owned): path -> mode."""


def host_scripts() -> dict[str, str]:
    """Where each file of files/ is installed on Hemma -> its text."""
    paths = [*RESTIC_FILES, HOST_METRICS_SCRIPT]
    return {path: script_text(path.rsplit("/", 1)[-1]) for path in paths}


_VERSION_CHECK = r"""wanted=@WANTED@
restic_version=$(restic version 2>/dev/null | sed -n 's/^restic \([0-9][0-9.]*\).*/\1/p')
if [ -z "$restic_version" ]; then
  echo "hemma: restic is not installed on this host: the backups need restic $wanted" \
    "or newer (apt-get install restic, or restic's own release binary)" >&2
  exit 1
fi
if [ "$(printf '%s\n' "$wanted" "$restic_version" | sort -V | head -n 1)" != "$wanted" ]; then
  echo "hemma: restic $restic_version on this host is older than $wanted, which the" \
    "backups need (check --read-data-subset=N%): install a newer one" >&2
  exit 1
fi
if ! command -v flock >/dev/null; then
  echo "hemma: flock is not installed on this host: the backup jobs take turns with it" \
    "(apt-get install util-linux)" >&2
  exit 1
fi
"""


def restic_version_check(minimum: tuple[int, int, int] = RESTIC_MIN_VERSION) -> str:
    """Shell that stops an install when Hemma's restic is missing or older than the
    scripts need (``sort -V`` compares), or flock is missing, with one line that
    says which and what to do."""
    return _VERSION_CHECK.replace("@WANTED@", ".".join(map(str, minimum)))
