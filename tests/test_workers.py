"""The suite's workers keep every test of the first private engine in one of them, and
every test of the side engine in one.

With ``-n 3 --dist loadgroup`` (scripts/test), tests/conftest.py marks each test that
uses the engine or its sshd ``xdist_group("engine")``, and each that uses the side
engine ``xdist_group("engine-side")``. If the grouping silently stops,
the second worker's first engine test waits for the first worker's engine to stop
(one engine per machine): the run took 510 s longer that way, with every test green.
pytest 9.2 broke it (pytest-xdist#1386: xdist renames the test's nodeid, which 9.2
no longer reads), so pytest is pinned below that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENGINE

TESTS = """
import os, pytest

@pytest.fixture
def {fixture}():
    return None

@pytest.mark.parametrize("i", range(4))
def test_grouped(i, {fixture}, tmp_path_factory):
    with open(os.environ["RECORD"], "a") as f:
        f.write("{fixture} " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(4))
def test_free(i):
    pass
"""


def test_every_engine_test_runs_in_one_worker(tmp_path: Path) -> None:
    (fixture,) = sorted(ENGINE)[:1]
    root = Path(__file__).resolve().parent
    (tmp_path / "conftest.py").write_text((root / "conftest.py").read_text())
    for name, uses in (
        ("test_a.py", fixture),
        ("test_b.py", fixture),
        ("test_c.py", "side_engine"),
        ("test_d.py", "side_engine"),
    ):
        (tmp_path / name).write_text(TESTS.format(fixture=uses))
    record = tmp_path / "workers"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-q", "-p",
         "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "RECORD": str(record), "PYTHONPATH": str(root.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in record.read_text().splitlines()]
    for group in (fixture, "side_engine"):
        workers = [worker for uses, worker in lines if uses == group]
        assert len(workers) == 8 and len(set(workers)) == 1, (group, workers)
