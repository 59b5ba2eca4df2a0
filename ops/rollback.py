"""Go back to a service's previous image, without a rebuild, through the plan:

    scripts/rollback SERVICE             the image before the one it runs
    scripts/rollback SERVICE --to REF    an image of its repository on Hemma
    scripts/rollback SERVICE --list      what is there, and nothing else
    scripts/rollback SERVICE --undo      back to the declared image

1. Read-only over ssh: the image the service's running container runs (a
   start-first one found by its label, any other by its name), and the images of
   that repository on Hemma, newest first (``imageRetention`` keeps the builds).
2. ``scripts/pulumi config set --path imageOverrides.SERVICE REF``, then
   ``scripts/pulumi preview``: the change is shown before anything changes.
3. ``scripts/pulumi up`` makes it so, with the same health gate as any deploy
   (start-first for the routed web services: no downtime).

Exit status: 0 done, 1 a step failed, 2 refused (nothing was run), 3 Hemma
unreachable over ssh (nothing was changed).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from ops import remote
from ops.outputs import ROOT
from ops.rollout import running_container

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,255}")
UNREACHABLE = 3
STABLE_TAG = "hemma"
"""The tag every build also gets (components/model/app.py): not a way back."""
RUNNING_FORMAT = "{{.Image}} {{.Config.Image}}"
LIST_FORMAT = "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedSince}}"


class Refused(Exception):
    """Nothing was run."""


class Failed(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Image:
    reference: str
    id: str
    created: str


def running_command(docker: str, service: str) -> str:
    """The running container's image ID and the reference it was created with."""
    q = shlex.quote
    return f'{q(docker)} inspect -f {q(RUNNING_FORMAT)} "$({running_container(docker, service)})"'


def repository_of(reference: str) -> str:
    """``repo[:tag]`` without its tag or digest (a registry port is not a tag)."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def images_on_hemma(listed: str) -> list[Image]:
    """``docker image ls`` lines, newest first, without the stable tag and untagged ones."""
    found = []
    for line in listed.splitlines():
        words = line.split(" ", 2)
        if len(words) < 2 or words[0].endswith((f":{STABLE_TAG}", ":<none>")):
            continue
        found.append(Image(words[0], words[1], words[2] if len(words) > 2 else ""))
    return found


def previous(images: Sequence[Image], running_id: str) -> Image:
    """The newest image older than the running one, of another ID."""
    ids = [i.id for i in images]
    here = next((n for n, i in enumerate(ids) if running_id.startswith(f"sha256:{i}")), None)
    if here is None:
        raise Refused("the running image is not among its repository's images on Hemma")
    for image in images[here + 1 :]:
        if not running_id.startswith(f"sha256:{image.id}"):
            return image
    raise Refused(
        "no earlier image of its repository is on Hemma (imageRetention keeps the newest "
        "builds; a pulled image stays until removed)"
    )


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="scripts/rollback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument("service", metavar="SERVICE", help="e.g. skriptoteket-web")
    what = main.add_mutually_exclusive_group()
    what.add_argument("--to", metavar="REF", help="an image of its repository on Hemma")
    what.add_argument("--list", action="store_true", help="list its images; change nothing")
    what.add_argument("--undo", action="store_true", help="back to the declared image")
    main.add_argument("--ssh", metavar="TARGET", help="default: $HEMMA_SSH or hemma")
    main.add_argument("--ssh-command", default="ssh", metavar="CMD")
    main.add_argument("--docker", default="docker", help="docker on Hemma")
    main.add_argument("--pulumi", default=str(ROOT / "scripts" / "pulumi"), help=argparse.SUPPRESS)
    return main


def _remote(ssh: list[str], what: str) -> str:
    print(f"==> {what}\n    {ssh[-1]}", flush=True)
    done = subprocess.run(ssh, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode == remote.SSH_FAILED:
        reason = (done.stderr.strip().splitlines() or ["ssh exited 255"])[-1]
        raise Failed(f"cannot reach Hemma over ssh: {reason}; nothing was changed", UNREACHABLE)
    if done.returncode != 0:
        raise Failed(f"{what}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def _pulumi(pulumi: str, *args: str) -> None:
    shown = shlex.join(["scripts/pulumi", *args])
    print(f"==> {shown}", flush=True)
    code = subprocess.run([pulumi, *args], stdin=subprocess.DEVNULL, check=False).returncode
    if code != 0:
        raise Failed(f"`{shown}` failed (exit {code})")


def rollback(args: argparse.Namespace) -> int:
    service = args.service
    if not _NAME.fullmatch(service):
        raise Refused(f"bad service name: {service!r}")
    if args.to is not None and not _REFERENCE.fullmatch(args.to):
        raise Refused(f"bad image reference: {args.to!r}")
    key = f"imageOverrides.{service}"
    if args.undo:
        _pulumi(args.pulumi, "config", "rm", "--path", key)
        _pulumi(args.pulumi, "preview")
        print(f"hemma rollback: {service} goes back to its declared image on `scripts/pulumi up`")
        return 0
    try:
        target = remote.target(args.ssh)
    except remote.BadTarget as error:
        raise Refused(str(error)) from None

    def ssh(command: str) -> list[str]:
        return remote.ssh_argv(args.ssh_command, target, command)

    running = _remote(ssh(running_command(args.docker, service)), f"find {service}'s image")
    running_id, _, reference = running.strip().partition(" ")
    if not running_id.startswith("sha256:"):
        raise Failed(f"{service}: no running container answered ({running.strip()!r})")
    if reference.startswith("sha256:"):
        tags = _remote(
            ssh(shlex.join([args.docker, "image", "inspect", "-f", "{{join .RepoTags \" \"}}",
                            running_id])),
            "find the image's tags",
        ).split()  # fmt: skip
        if not tags:
            raise Refused(f"{service} runs an image with no tag: nothing to go back along")
        reference = tags[0]
    repository = repository_of(reference)
    listed = _remote(
        ssh(shlex.join([args.docker, "image", "ls", "--format", LIST_FORMAT, repository])),
        f"list the images of {repository}",
    )
    images = images_on_hemma(listed)
    for image in images:
        mark = "  (running)" if running_id.startswith(f"sha256:{image.id}") else ""
        print(f"    {image.reference}  {image.id}  {image.created}{mark}")
    if args.list:
        return 0
    if args.to is not None:
        chosen = next((i for i in images if i.reference == args.to), None)
        if chosen is None:
            raise Refused(f"{args.to} is not on Hemma: `scripts/rollback {service} --list`")
    else:
        chosen = previous(images, running_id)
    _pulumi(args.pulumi, "config", "set", "--path", key, chosen.reference)
    _pulumi(args.pulumi, "preview")
    print(
        f"hemma rollback: {service} runs {chosen.reference} on `scripts/pulumi up`; "
        f"`scripts/rollback {service} --undo` goes back to the declared image"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return rollback(args)
    except Refused as refused:
        print(f"hemma rollback: {refused}; nothing was run", file=sys.stderr)
        return 2
    except Failed as failed:
        print(f"hemma rollback: {failed}", file=sys.stderr)
        return failed.code


if __name__ == "__main__":
    sys.exit(main())
