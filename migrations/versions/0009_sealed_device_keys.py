"""device keys sealed at rest: ``device_keys.secret`` (clear) → ``secret_sealed`` (AES-256-GCM)

The sealing key is derived as in ``app/ticketing/keycrypt.py`` (kept in step by hand, since a migration must
not change when the application does): HKDF-SHA256 of the first secret of ``QALA_KEY_ENCRYPTION_KEY``, or of
``CARD_HASH_KEY``, or of the development default. Run it with the same environment as the service.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 16:40:00
"""

from __future__ import annotations

import base64
import os

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PREFIX = "v1:"


def _aes() -> AESGCM:
    secrets = [s.strip() for s in os.environ.get("QALA_KEY_ENCRYPTION_KEY", "").split(",") if s.strip()]
    secret = secrets[0] if secrets else os.environ.get("CARD_HASH_KEY") or "qala-dev-card-hash-key"
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qala",
               info=b"qala device signing keys v1").derive(secret.encode())
    return AESGCM(key)


def upgrade() -> None:
    with op.batch_alter_table('device_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.String(length=255), nullable=True))
    conn = op.get_bind()
    aes = _aes()
    for key_id, secret in conn.execute(sa.text("SELECT id, secret FROM device_keys")).all():
        nonce = os.urandom(12)
        box = aes.encrypt(nonce, secret.encode(), key_id.encode())
        sealed = PREFIX + base64.urlsafe_b64encode(nonce + box).decode()
        conn.execute(sa.text("UPDATE device_keys SET secret_sealed = :s WHERE id = :id"), {"s": sealed, "id": key_id})
    with op.batch_alter_table('device_keys', schema=None) as batch_op:
        batch_op.alter_column('secret_sealed', existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column('secret')


def downgrade() -> None:
    with op.batch_alter_table('device_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret', sa.String(length=128), nullable=True))
    conn = op.get_bind()
    aes = _aes()
    for key_id, sealed in conn.execute(sa.text("SELECT id, secret_sealed FROM device_keys")).all():
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        secret = aes.decrypt(raw[:12], raw[12:], key_id.encode()).decode()
        conn.execute(sa.text("UPDATE device_keys SET secret = :s WHERE id = :id"), {"s": secret, "id": key_id})
    with op.batch_alter_table('device_keys', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=128), nullable=False)
        batch_op.drop_column('secret_sealed')
