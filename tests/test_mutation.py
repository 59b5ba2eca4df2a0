"""The mutation check itself, on a project of two lines: it plants each bug, runs the
tests, counts what they catch, names what survives, and fails under its threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import mutation

GUARD = "def allowed(port):\n    return port == 443 or port == 80\n"
TESTS = (
    "from guard import allowed\n\n"
    "def test_https_is_allowed():\n    assert allowed(443)\n\n"
    "def test_ssh_is_not():\n    assert not allowed(22)\n"
)
MODULES = {"guard": (("guard.py",), ("test_guard.py",))}


def project(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "guard.py").write_text(GUARD)
    (tmp_path / "test_guard.py").write_text(tests)
    return tmp_path


def test_the_mutants_of_a_line_are_one_change_each() -> None:
    found = [(m.what, m.now.strip()) for m in mutation.mutants("guard.py", GUARD)]
    assert ("== to !=", "return port != 443 or port == 80") in found
    assert ("== to !=", "return port == 443 or port != 80") in found
    assert ("or to and", "return port == 443 and port == 80") in found
    assert ("a constant changed", "return port == 444 or port == 80") in found


def test_shell_mutants_drop_exits_quotes_and_umask() -> None:
    line = 'STEP = \'umask 077; [ -e "$2" ] && exit 1; cp -a "$1" "$2"\''
    found = {m.what for m in mutation.mutants("x.py", line + "\n")}
    assert {"exit 1 dropped", "a quote dropped", "umask 077 to 022"} <= found


def test_a_survivor_is_named_and_fails_the_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Port 80 is never tested as allowed: changing it survives."""
    root = project(tmp_path, TESTS)
    status = mutation.check(root, MODULES, None, None, {}, threshold=0.9)
    out = capsys.readouterr().out
    assert status == 1
    assert "guard: 4 of 5 caught (80%)" in out
    assert "SURVIVED guard.py:2: a constant changed: return port == 443 or port == 81" in out


def test_tests_that_cover_every_branch_pass_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "\ndef test_http_is_allowed():\n    assert allowed(80)\n"
    extra += "\ndef test_81_is_not():\n    assert not allowed(81)\n"
    root = project(tmp_path, TESTS + extra)
    status = mutation.check(root, MODULES, None, None, {}, threshold=0.9)
    out = capsys.readouterr().out
    assert "guard: 5 of 5 caught (100%)" in out, out
    assert status == 0


def test_an_equivalent_mutant_is_left_out_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, TESTS)
    key = "guard.py:2:return port == 443 or port == 80 => return port == 443 or port == 81"
    status = mutation.check(root, MODULES, None, None, {key: "because"}, threshold=0.9)
    out = capsys.readouterr().out
    assert "guard: 4 of 4 caught (100%)" in out
    assert status == 0
    assert f"equivalent {key}: because" in out


def test_tests_that_fail_with_no_bug_planted_give_no_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Else every mutant would count as caught."""
    root = project(tmp_path, TESTS + "\ndef test_broken():\n    assert False\n")
    status = mutation.check(root, MODULES, None, None, {}, threshold=0.9)
    assert status == 1
    assert capsys.readouterr().out == "guard: its tests fail with no bug planted: no score\n"


def test_docstrings_and_comments_get_no_mutants() -> None:
    text = (
        'def f(x):\n    """Refuse x == 1 and not 2 (see line 40)."""\n'
        "    # exit 1 when x != 3\n    return x\n"
    )
    assert list(mutation.mutants("f.py", text)) == []


def test_a_line_inside_a_script_string_is_reached_through_its_statement() -> None:
    """Coverage records a multi-line statement on its first line only."""
    text = 'def script():\n    return """\nset -e\n[ -e "$1" ] && exit 1\n"""\n'
    assert mutation.statement_lines(text, 4) == range(2, 6)
    assert mutation.statement_lines(text, 1) == range(1, 2)


def test_each_line_is_reached_by_the_tests_that_run_it(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "scratch").mkdir()
    root = project(tmp_path / "p", TESTS)
    reached = mutation.reach(root, ["guard.py"], ["test_guard.py"], tmp_path / "scratch")
    assert reached is not None
    tests = {"test_guard.py::test_https_is_allowed", "test_guard.py::test_ssh_is_not"}
    assert reached["guard.py"][2] == tests
    assert "" in reached["guard.py"][1], "the def runs at import"
    mutant = next(mutation.mutants("guard.py", GUARD))
    assert mutation.chosen_tests(mutant, GUARD, reached["guard.py"]) == sorted(tests)
    header = mutation.Mutant("guard.py", 1, "", "", "")
    assert mutation.chosen_tests(header, GUARD, reached["guard.py"]) == [], "import: all"


def test_a_mutant_the_reaching_tests_miss_still_meets_every_test(tmp_path: Path) -> None:
    """A test may reach the line in a subprocess, out of coverage's sight."""
    root = project(tmp_path, TESTS)
    mutant = next(m for m in mutation.mutants("guard.py", GUARD) if m.what == "or to and")
    https = ["test_guard.py::test_https_is_allowed"]
    ssh = ["test_guard.py::test_ssh_is_not"]
    assert mutation.killed(root, mutant, ["test_guard.py"], narrow=ssh)
    assert mutation.killed(root, mutant, ssh, narrow=https)
    assert not mutation.killed(root, mutant, ssh, narrow=ssh)
    assert (root / "guard.py").read_text() == GUARD
