"""Plans of git revisions: each checked out into a temporary worktree and planned
there, with that revision's program and stack file.

The plan tool itself (this package) is the running one, copied over the
revision's: a revision older than it has none, and two plans compare only when
the same tool wrote them. The venv is the running one too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from plan.stackconfig import InputError

PLAN_PACKAGE = Path(__file__).resolve().parent


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )


def is_revision(root: Path, name: str) -> bool:
    if shutil.which("git") is None:
        return False
    return _git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").returncode == 0


@contextlib.contextmanager
def worktree(root: Path, revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary directory, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="hemma-plan-"))
    tree = scratch / "tree"
    added = _git(root, "worktree", "add", "--detach", "--quiet", str(tree), revision)
    try:
        if added.returncode != 0:
            raise InputError(f"{revision}: git worktree add failed: {added.stderr.strip()}")
        yield tree
    finally:
        if tree.exists():
            _git(root, "worktree", "remove", "--force", str(tree))
        _git(root, "worktree", "prune")
        shutil.rmtree(scratch, ignore_errors=True)


def plan_of_revision(root: Path, revision: str, plan_args: Sequence[str]) -> dict[str, Any]:
    """The plan document of ``revision``, planned with ``plan_args`` (stack and config)."""
    with worktree(root, revision) as tree:
        if not (tree / "components" / "main.py").is_file():
            raise InputError(f"{revision}: has no components/main.py to plan")
        target = tree / "plan"
        target.mkdir(exist_ok=True)
        for module in PLAN_PACKAGE.glob("*.py"):
            shutil.copy2(module, target / module.name)
        output = tree.parent / "plan.json"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        run = subprocess.run(
            [sys.executable, "-m", "plan", *plan_args, "--quiet", "--json", str(output)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            lines = (run.stderr or run.stdout).strip().splitlines() or ["the plan failed"]
            if "Traceback (most recent call last):" in lines:
                # Not a config error: a program this plan tool cannot run (one older
                # than the interfaces it reads), or a bug. The last line says which.
                lines = [f"cannot plan this revision: {lines[-1]}"]
            raise InputError("\n".join(f"{revision}: {line}" for line in lines))
        plan: dict[str, Any] = json.loads(output.read_text())
        return plan
