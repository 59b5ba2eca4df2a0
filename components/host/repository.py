"""The one step that creates the restic repository, run once by `pulumi up`.

No nightly job creates a repository: a backup disk that did not mount would get a
new, empty one on the system disk, and every check would pass against it. This
``remote.Command`` runs ``hemma-repository.sh init`` once, after the backup job has
installed its scripts and the env file; the state records that it ran. A new
``backups.repository`` (or ``backups.systemDisk``) replaces it, which creates the
new repository. It has no delete: a repository is never removed by the program.
"""

from __future__ import annotations

import shlex

import pulumi
import pulumi_command as command

from components.backups.restic import ENV_FILE, repository_init_argv
from components.foundation.commands import as_command


def backup_repository(
    name: str,
    connection: command.remote.ConnectionArgs,
    repository: str,
    system_disk: bool,
    after: pulumi.Resource,
    opts: pulumi.ResourceOptions | None = None,
) -> command.remote.Command:
    init = "sudo -n " + shlex.join(repository_init_argv(ENV_FILE, system_disk=system_disk))
    return command.remote.Command(
        name,
        connection=connection,
        create=as_command(init),
        # The repository's name may hold credentials (rest:https://user:pass@...).
        triggers=[pulumi.Output.secret(repository), system_disk],
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            depends_on=[after], additional_secret_outputs=["stdout", "stderr"]
        ).merge(opts),
    )
