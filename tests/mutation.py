"""A mutation check the project runs on itself: ``python -m tests.mutation``.

Bugs are planted one at a time in the modules that guard data and security (a
flipped comparison, ``and`` for ``or``, a dropped ``exit``, a dropped quote, a
changed constant), and each module's own tests run against each planted bug. A
bug the tests do not notice survives. It prints the score per module and every
survivor (file, line, change), and exits 1 when a module scores under the
threshold.

    python -m tests.mutation                       # every module in MODULES
    python -m tests.mutation --module nginx-files  # one of them
    python -m tests.mutation --changed main        # only files changed since main
    python -m tests.mutation --limit 10            # at most 10 mutants per file

It works in copies of the checkout (the checkout itself is never touched), one per
worker (``--workers``, default one per core). The module's tests run once under
coverage, each test in a context of its own, which says which tests reach each line.
A mutant then meets only the tests that reach its statement, with
``pytest -x -q -m "not tools"``; one that survives them meets all the module's tests
before it is called a survivor, since a test may reach the line in a subprocess,
where coverage does not follow. A line no test reaches in this process, or one run at
import, meets all of them. It is not part of ``scripts/test``.
``tests/mutation_equivalent.txt`` lists mutants that cannot change behaviour
(``FILE:LINE:WAS => NOW  # WHY``, one per line); they are left out of the score
and listed.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = ROOT / "tests" / "mutation_equivalent.txt"
THRESHOLD = 0.9
TIMEOUT = 600

MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (source files, the tests that cover them)
    "config": (
        (
            "components/config/checks.py",
            "components/config/host_checks.py",
            "components/model/values.py",
            "components/model/allowed/daemon.py",
            "components/model/allowed/directories.py",
            "components/model/allowed/restic.py",
        ),
        ("tests/config",),
    ),
    "shell": (
        ("components/foundation/commands.py", "components/host/unit_files.py"),
        ("tests/foundation", "tests/host", "tests/apps"),
    ),
    "nginx-files": (
        ("components/proxy/nginx_files.py", "components/proxy/reload.py"),
        ("tests/proxy",),
    ),
    "restic-and-restore": (
        ("components/backups/restic.py", "ops/restore_plan.py"),
        ("tests/backups",),
    ),
    "containers": (
        ("components/foundation/containers.py",),
        ("tests/foundation", "tests/policy", "tests/apps", "tests/postgres"),
    ),
    "replace-rules": (("plan/replaces.py",), ("tests/plan",)),
    "adoption-shell": (("ops/adopt/shell.py",), ("tests/ops",)),
    "placement": (
        ("components/config/placement_checks.py", "components/model/placement.py"),
        ("tests/hosts",),
    ),
}

# (pattern, replacement, what): each applied to one match at a time. The first
# ones apply to Python code; SHELL ones inside string literals (the scripts the
# program writes) and in shell files; nothing applies to docstrings or comments.
OPERATORS: tuple[tuple[str, str, str], ...] = (
    (r" == ", " != ", "== to !="),
    (r" != ", " == ", "!= to =="),
    (r" <= ", " < ", "<= to <"),
    (r" >= ", " > ", ">= to >"),
    (r" < ", " <= ", "< to <="),
    (r" > ", " >= ", "> to >="),
    (r" and ", " or ", "and to or"),
    (r" or ", " and ", "or to and"),
    (r"\bnot ", "", "not dropped"),
    (r"\bTrue\b", "False", "True to False"),
    (r"\bFalse\b", "True", "False to True"),
    (r"(?<![\w.])([1-9][0-9]*)(?![\w.])", "BUMP", "a constant changed"),
)
SHELL: tuple[tuple[str, str, str], ...] = (
    (r"\bexit 1\b", "true", "exit 1 dropped"),
    (r"\bexit 2\b", "true", "exit 2 dropped"),
    (r"umask 077", "umask 022", "umask 077 to 022"),
    (r'"\$([A-Za-z_][A-Za-z0-9_]*|[0-9])"', r"$\1", "a quote dropped"),
    (r"\bset -e", "set +e", "set -e dropped"),
)


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    was: str
    now: str
    what: str

    def key(self) -> str:
        return f"{self.path}:{self.line}:{self.was.strip()} => {self.now.strip()}"


CODE, STRING, QUIET = "code", "string", "quiet"


def _kinds(path: str, text: str) -> dict[tuple[int, int], str]:
    """(line, column) -> STRING or QUIET (docstring, comment) for every character of a
    Python file that is not code; a shell file is all STRING but its comments."""
    lines = text.splitlines()
    if not path.endswith(".py"):
        return {
            (number, col): QUIET if line.lstrip().startswith("#") else STRING
            for number, line in enumerate(lines, 1)
            for col in range(len(line))
        }
    kinds: dict[tuple[int, int], str] = {}
    previous = tokenize.NEWLINE
    starts = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.NL)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.STRING, tokenize.COMMENT):
            docstring = token.type == tokenize.STRING and previous in starts
            kind = QUIET if token.type == tokenize.COMMENT or docstring else STRING
            (row, col), (end_row, end_col) = token.start, token.end
            for number in range(row, end_row + 1):
                first = col if number == row else 0
                last = end_col if number == end_row else len(lines[number - 1])
                for column in range(first, last):
                    kinds[(number, column)] = kind
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return kinds


def mutants(path: str, text: str) -> Iterator[Mutant]:
    """Every single-site mutant of ``text``, line by line, in order: Python operators
    in code, shell operators in string literals, nothing in docstrings or comments."""
    kinds = _kinds(path, text)
    for number, line in enumerate(text.splitlines(), 1):
        if "noqa: mutation" in line:
            continue
        for operators, wanted in ((OPERATORS, CODE), (SHELL, STRING)):
            for pattern, replacement, what in operators:
                for match in re.finditer(pattern, line):
                    if kinds.get((number, match.start()), CODE) != wanted:
                        continue
                    if replacement == "BUMP":
                        changed = str(int(match.group(1)) + 1)
                    else:
                        changed = match.expand(replacement)
                    now = line[: match.start()] + changed + line[match.end() :]
                    if now != line:
                        yield Mutant(path, number, line, now, what)


def equivalent() -> dict[str, str]:
    """Mutant key -> why it cannot change behaviour (``KEY  # WHY``, two spaces)."""
    found: dict[str, str] = {}
    if EQUIVALENT_FILE.exists():
        for raw in EQUIVALENT_FILE.read_text().splitlines():
            if not raw.strip() or raw.startswith("#"):
                continue
            key, _, why = raw.partition("  # ")
            found[key.strip()] = why.strip()
    return found


def changed_files(base: str) -> set[str]:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--name-only", base],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(done.stdout.split())


FAST = ["-m", "not tools"]
"""The tests a mutant meets: the fast ones, unless ``--tools`` (real tools and daemons:
much slower, but the shell the program writes is proven there)."""

# A pytest plugin, loaded with ``-p``: every test records the lines it reaches under
# its own node id; what runs outside a test (imports, collection) has the empty one.
COVER_PLUGIN = """\
import os
import coverage

_cov = coverage.Coverage(data_file=os.environ["HEMMA_MUTATION_DATA"], branch=False)
_cov.start()


def pytest_runtest_setup(item):
    _cov.switch_context(item.nodeid)


def pytest_unconfigure(config):
    _cov.stop()
    _cov.save()
"""

# source path -> line -> the node ids of the tests that reach it ("" for import time)
Reach = dict[str, dict[int, set[str]]]


def pytest(copy: Path, args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAST, *args],
            cwd=copy, capture_output=True, text=True, timeout=TIMEOUT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return -1
    return run.returncode


def passes(copy: Path, tests: Sequence[str]) -> bool:
    """Whether ``tests`` pass in ``copy``."""
    return pytest(copy, ["-x", *tests]) == 0


def reach(copy: Path, sources: Sequence[str], tests: Sequence[str], scratch: Path) -> Reach | None:
    """Run ``tests`` once under coverage; which tests reach each line of ``sources``.
    None when they fail with no bug planted."""
    plugins = scratch / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "hemma_mutation_cover.py").write_text(COVER_PLUGIN)
    data = scratch / "coverage.data"
    pythonpath = os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
    env = {"HEMMA_MUTATION_DATA": str(data), "PYTHONPATH": pythonpath}
    if pytest(copy, ["-p", "hemma_mutation_cover", *tests], env) != 0:
        return None
    import coverage  # the check's own dependency, not the suite's

    measured = coverage.CoverageData(basename=str(data))
    measured.read()
    found: Reach = {}
    for source in sources:
        by_line = measured.contexts_by_lineno(str((copy / source).resolve()))
        found[source] = {line: set(contexts) for line, contexts in by_line.items()}
    return found


def statement_lines(text: str, line: int) -> range:
    """The lines of the innermost statement holding ``line``: coverage records a
    multi-line statement (a script in a string) on its first line only."""
    best: ast.stmt | None = None
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.stmt):
            continue
        inside = node.lineno <= line <= (node.end_lineno or line)
        if inside and (best is None or node.lineno >= best.lineno):
            best = node
    if best is None:
        return range(line, line + 1)
    # A compound statement's body is its own; its header is what is left.
    first = best.lineno
    body = getattr(best, "body", None)
    last = (body[0].lineno - 1) if body and body[0].lineno > first else (best.end_lineno or line)
    return range(first, max(first, last) + 1)


def chosen_tests(mutant: Mutant, text: str, lines: dict[int, set[str]] | None) -> list[str]:
    """The node ids of the tests that reach the mutant's statement, or [] for all."""
    if lines is None or not mutant.path.endswith(".py"):
        return []
    reached: set[str] = set()
    for line in statement_lines(text, mutant.line):
        reached |= lines.get(line, set())
    if not reached or "" in reached:
        return []
    return sorted(reached)


def killed(copy: Path, mutant: Mutant, tests: Sequence[str], narrow: Sequence[str] = ()) -> bool:
    """Whether the tests fail with ``mutant`` planted in ``copy``: ``narrow`` first
    (the tests that reach it), then all of ``tests`` if those pass."""
    target = copy / mutant.path
    original = target.read_text()
    lines = original.splitlines(keepends=True)
    ending = "\n" if lines[mutant.line - 1].endswith("\n") else ""
    lines[mutant.line - 1] = mutant.now + ending
    target.write_text("".join(lines))
    try:
        if narrow and not passes(copy, narrow):
            return True
        return not passes(copy, tests)
    finally:
        target.write_text(original)


def check(
    root: Path,
    modules: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    only: set[str] | None,
    limit: int | None,
    skip: dict[str, str],
    threshold: float,
    workers: int = 1,
) -> int:
    """Run every module's mutants against its tests in copies of ``root``; print the
    scores and survivors; 1 when a module scores under ``threshold``."""
    status = 0
    with tempfile.TemporaryDirectory(prefix="hemma-mutation-") as scratch_dir:
        scratch = Path(scratch_dir)
        ignore = shutil.ignore_patterns("venv", "__pycache__", ".*cache")
        copies: queue.Queue[Path] = queue.Queue()
        for n in range(max(1, workers)):
            copy = scratch / f"checkout-{n}"
            shutil.copytree(root, copy, ignore=ignore)
            copies.put(copy)
        first = scratch / "checkout-0"
        for name, (sources, tests) in modules.items():
            files = [s for s in sources if only is None or s in only]
            if not files:
                continue
            reached = reach(first, files, tests, scratch)
            if reached is None:
                print(f"{name}: its tests fail with no bug planted: no score", flush=True)
                status = 1
                continue
            planted: list[tuple[Mutant, list[str]]] = []
            left_out: list[tuple[Mutant, str]] = []
            for source in files:
                text = (root / source).read_text()
                found = list(mutants(source, text))
                for mutant in found[:limit] if limit else found:
                    if mutant.key() in skip:
                        left_out.append((mutant, skip[mutant.key()]))
                    else:
                        planted.append((mutant, chosen_tests(mutant, text, reached[source])))

            def one(item: tuple[Mutant, list[str]], tests: Sequence[str] = tests) -> bool:
                copy = copies.get()
                try:
                    return killed(copy, item[0], tests, item[1])
                finally:
                    copies.put(copy)

            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                results = list(pool.map(one, planted))
            survivors = [m for (m, _), dead in zip(planted, results, strict=True) if not dead]
            total, caught = len(planted), sum(results)
            score = caught / total if total else 1.0
            print(f"{name}: {caught} of {total} caught ({score:.0%})", flush=True)
            for mutant in survivors:
                where = f"{mutant.path}:{mutant.line}"
                print(f"  SURVIVED {where}: {mutant.what}: {mutant.now.strip()}", flush=True)
            for mutant, why in left_out:
                print(f"  equivalent {mutant.key()}: {why}")
            if score < threshold:
                status = 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--module", choices=sorted(MODULES), action="append")
    parser.add_argument("--changed", metavar="BASE", help="only the files changed since BASE")
    parser.add_argument("--limit", type=int, help="at most this many mutants per file")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--tools", action="store_true", help="run the module's tools tests too (slow)"
    )
    args = parser.parse_args(argv)
    if args.tools:
        FAST.clear()
    modules = {k: v for k, v in MODULES.items() if not args.module or k in args.module}
    only = changed_files(args.changed) if args.changed else None
    return check(ROOT, modules, only, args.limit, equivalent(), args.threshold, args.workers)


if __name__ == "__main__":
    sys.exit(main())
