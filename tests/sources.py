"""Stand-in source checkouts of the apps, shaped as the catalog assumes them.

The real repositories are not here; these hold a Dockerfile at every path the
apps build from, each copying its service's own folder and, for HuleEdu, the
shared ``libs/common``, so that a digest of what an image is built from can be
shown to change with the files it copies and with nothing else.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from components.apps import huleedu

_HULEEDU_SERVICE = """\
FROM python:3.11-slim
WORKDIR /app
COPY libs/common /app/libs/common
COPY services/{name} /app/services/{name}
CMD ["python", "-m", "services.{name}"]
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def write_checkouts(base: Path) -> dict[str, str]:
    """Create the three checkouts under ``base``; return app -> path."""
    skriptoteket = base / "skriptoteket"
    _write(
        skriptoteket,
        {
            "Dockerfile": (
                "FROM python:3.11-slim\nCOPY pyproject.toml pdm.lock ./\nCOPY src ./src\n"
            ),
            "Dockerfile.runner": "FROM python:3.11-slim\nCOPY runner /runner\n",
            "pyproject.toml": "[project]\nname = 'skriptoteket'\n",
            "pdm.lock": "",
            "src/skriptoteket/__init__.py": "",
            "runner/run.py": "print('run')\n",
            "docs/README.md": "not in any image\n",
        },
    )
    huleedu_root = base / "huleedu"
    files = {"libs/common/__init__.py": "", ".dockerignore": "**/__pycache__\n"}
    for name in huleedu.SERVICES:
        files[f"services/{name}/Dockerfile"] = _HULEEDU_SERVICE.format(name=name)
        files[f"services/{name}/__main__.py"] = f"# {name}\n"
    files["services/language_tool_service/Dockerfile"] = _HULEEDU_SERVICE.format(
        name="language_tool_service"
    )
    files["services/language_tool_service/__main__.py"] = "# language tool\n"
    files["scripts/ml_training/essay_scoring/offload/Dockerfile"] = (
        "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n"
        "COPY scripts/ml_training/essay_scoring/offload /app\n"
    )
    files["scripts/ml_training/essay_scoring/offload/server.py"] = "# offload\n"
    _write(huleedu_root, files)
    classhub = base / "classhub"
    _write(
        classhub,
        {
            "classhub/Dockerfile": "FROM python:3.11-slim\nCOPY classhub /app\n",
            "classhub/manage.py": "",
            "helper/Dockerfile": "FROM python:3.11-slim\nCOPY helper /app\n",
            "helper/manage.py": "",
        },
    )
    return {
        "skriptoteket": str(skriptoteket),
        "huleedu": str(huleedu_root),
        "classhub": str(classhub),
    }


@cache
def checkouts() -> dict[str, str]:
    """One set of stand-in checkouts per test process, removed at exit."""
    base = Path(tempfile.mkdtemp(prefix="hemma-sources-"))
    atexit.register(shutil.rmtree, base, True)
    return write_checkouts(base)
