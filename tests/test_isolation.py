"""Import rules: the prediction core imports without Flask, SQLAlchemy or Redis (the README's layout: ``app`` may
import ``prediction``, never the other way round); no test module imports from another (shared helpers and
fixtures live in ``tests/fixtures/``)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_prediction_imports_without_web_db_or_cache() -> None:
    modules = sorted(".".join(p.relative_to(ROOT / "prediction").with_suffix("").parts)
                     for p in (ROOT / "prediction").rglob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module('prediction.' + name)\n"
        "print(json.dumps(sorted(m for m in ('flask', 'sqlalchemy', 'redis', 'app') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert {"gtfs.schedule", "network", "sim.simulate", "avl.events", "eta.models"} <= set(modules)


def test_prediction_never_imports_app() -> None:
    offenders = [p.name for p in (ROOT / "prediction").rglob("*.py")
                 if "from app" in p.read_text() or "import app" in p.read_text()]
    assert offenders == []


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``tests.test_*``) that ``source`` imports, at any depth (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tests.test_")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("tests.test_"):
                found.append(node.module)
            elif node.module == "tests":
                found += [f"tests.{a.name}" for a in node.names if a.name.startswith("test_")]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # relative: "from .test_x import y"
            names = [node.module] if node.module else [a.name for a in node.names]
            found += [f"tests.{name}" for name in names if name and name.startswith("test_")]
    return found


def test_the_import_check_sees_every_form() -> None:
    source = ("from tests.test_a import x\nimport tests.test_b\nfrom tests import test_c\nfrom .test_d import y\n"
              "def f():\n    from tests.test_e import z\n"
              "from tests.fixtures.tickets import make_card\nfrom tests import api_feed\n")
    assert imported_test_modules(source) == ["tests.test_a", "tests.test_b", "tests.test_c", "tests.test_d",
                                             "tests.test_e"]


def test_no_test_module_imports_another() -> None:
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        imported = imported_test_modules(path.read_text(encoding="utf-8"))
        if imported:
            offenders[str(path.relative_to(ROOT))] = imported
    assert offenders == {}, "move what they share into tests/fixtures/"
