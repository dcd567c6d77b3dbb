"""drop qala_online_tap: online taps go through the group function qala_online_taps (0013) only

Keeping the one-tap function would keep a second copy of the online tap rules in the database that nothing
calls. Downgrading creates it again from migration 0008.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 21:15:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _single_tap_migration() -> ModuleType:
    path = Path(__file__).with_name("0008_online_tap_function.py")
    spec = importlib.util.spec_from_file_location("qala_migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_single_tap_migration().DROP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_single_tap_migration().FUNCTION)
