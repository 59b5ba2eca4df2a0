"""What an image's content tag covers: exactly what its Dockerfile reads, and the
whole context where the Dockerfile reads it in a way that cannot be followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.foundation.builds import reads_beyond_its_copies, source_digest
from components.model.app import Build


def checkout(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "main.py").write_text("print(1)\n")
    (tmp_path / "docs.md").write_text("docs\n")
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def digest(root: Path) -> str:
    return source_digest(str(root), Build("svc", dockerfile="Dockerfile", context="."))


def changed_by(root: Path, relative: str) -> bool:
    before = digest(root)
    (root / relative).write_text((root / relative).read_text() + "# edited\n")
    return digest(root) != before


def test_an_edit_to_a_copied_file_changes_the_tag_and_one_elsewhere_does_not(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path, "FROM python:3.11\nCOPY svc/ /app/\n")
    assert not reads_beyond_its_copies((root / "Dockerfile").read_text())
    assert not changed_by(root, "docs.md")
    assert changed_by(root, "svc/main.py")


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM python:3.11\nARG SERVICE=svc\nCOPY ${SERVICE}/ /app/\n",
        "FROM python:3.11\nARG SERVICE=svc\nCOPY $SERVICE /app/\n",
        "FROM python:3.11\nRUN --mount=type=bind,source=requirements.txt,target=/r.txt \\\n"
        "    pip install -r /r.txt\n",
    ],
)
def test_a_source_it_cannot_follow_makes_every_file_of_the_context_count(
    tmp_path: Path, dockerfile: str
) -> None:
    root = checkout(tmp_path, dockerfile)
    assert reads_beyond_its_copies(dockerfile)
    assert changed_by(root, "svc/main.py")
    assert changed_by(root, "requirements.txt")


def test_dockerignore_still_holds_for_the_whole_context(tmp_path: Path) -> None:
    root = checkout(tmp_path, "FROM python:3.11\nARG S=svc\nCOPY ${S}/ /app/\n")
    (root / ".dockerignore").write_text("docs.md\n")
    assert not changed_by(root, "docs.md")
