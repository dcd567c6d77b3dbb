"""The prediction core must import without Flask, SQLAlchemy or Redis (the README's layout: ``app`` may import
``prediction``, never the other way round)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_prediction_imports_without_web_db_or_cache() -> None:
    modules = sorted(p.stem for p in (ROOT / "prediction").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module('prediction.' + name)\n"
        "print(json.dumps(sorted(m for m in ('flask', 'sqlalchemy', 'redis', 'app') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert "schedule" in modules


def test_prediction_never_imports_app() -> None:
    offenders = [p.name for p in (ROOT / "prediction").glob("*.py")
                 if "from app" in p.read_text() or "import app" in p.read_text()]
    assert offenders == []
