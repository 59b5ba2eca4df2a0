"""The layout shows the server: a folder per real part, imports only downward.

The import contract lives in ``pyproject.toml`` and ``bash scripts/test`` runs
it with import-linter. These tests show the checker is real: it passes on the
code as it is, and fails on an import that runs upward or in a circle.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT

COMPONENTS = ROOT / "components"
PLANNER = ROOT / "plan"
TOOLS = (PLANNER, ROOT / "ops", ROOT / "policy")
"""The tools over the program: the offline planner, the operator's tools over ssh,
the policy pack. None of them is a part of the server."""
LINT_IMPORTS = ROOT / "venv" / "bin" / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), "import-linter is required (requirements-dev.txt)"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the code and its contract, to break on purpose."""
    for package in (COMPONENTS, PLANNER):
        shutil.copytree(
            package, tmp_path / package.name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    text = path.read_text()
    head, _, rest = text.partition("from __future__ import annotations\n")
    path.write_text(f"{head}from __future__ import annotations\n\n{statement}  # noqa\n{rest}")


def test_the_code_keeps_the_import_contract(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tree: Path) -> None:
    add_import(tree, "components.model.site", "import components.config.stack")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "Imports only go downward BROKEN" in done.stdout


def test_two_parts_of_one_layer_may_not_import_each_other(tree: Path) -> None:
    add_import(tree, "components.host.units", "import components.postgres.server")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "Imports only go downward BROKEN" in done.stdout


def test_a_circle_between_sibling_modules_breaks_the_contract(tree: Path) -> None:
    add_import(tree, "components.apps.huleedu", "import components.apps.skriptoteket")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "No two modules import each other, at any depth BROKEN" in done.stdout


def test_an_app_definition_that_imports_pulumi_breaks_the_contract(tree: Path) -> None:
    add_import(tree, "components.apps.huleedu", "import pulumi")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "import no Pulumi BROKEN" in done.stdout


def test_the_entry_point_is_a_few_lines() -> None:
    lines = [line for line in (ROOT / "__main__.py").read_text().splitlines() if line.strip()]
    assert len(lines) <= 5


def test_no_module_is_over_about_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in (COMPONENTS, PLANNER)
        for path in package.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 320
    }
    assert long == {}


def test_the_tools_stand_beside_the_server_s_parts_not_among_them() -> None:
    """components/ holds only what the server is made of; the planner, like ops/ and
    policy/, sits beside it, and the server's parts import none of them."""
    assert not (COMPONENTS / "plan").exists()
    for tool in TOOLS:
        assert (tool / "__init__.py").is_file(), tool
    names = "|".join(tool.name for tool in TOOLS)
    statement = re.compile(rf"^\s*(from|import)\s+({names})\b", re.MULTILINE)
    for path in COMPONENTS.rglob("*.py"):
        found = statement.search(path.read_text())
        assert found is None, f"{path.relative_to(ROOT)}: {found and found.group(0).strip()}"


def test_a_part_that_imports_the_planner_breaks_the_contract(tree: Path) -> None:
    add_import(tree, "components.main", "import plan.diff")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "Imports only go downward BROKEN" in done.stdout


def test_the_tests_mirror_the_folders() -> None:
    folders = {p.name for p in COMPONENTS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    tested = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    assert folders <= tested, "each part has its own tests folder"


def test_the_readme_explains_every_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    for folder in sorted(p for p in COMPONENTS.iterdir() if p.is_dir() and p.name != "__pycache__"):
        assert f"components/{folder.name}/" in layout, folder.name
