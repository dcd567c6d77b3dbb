"""Device signing keys sealed at rest with AES-256-GCM.

The server must know each validator's HMAC key to check its signatures, so the key cannot be hashed; it is
stored sealed instead (``device_keys.secret_sealed`` = ``v1:`` + base64url(nonce ‖ ciphertext ‖ tag)), with the
key id as associated data so a sealed value copied onto another row does not open. The sealing key is derived
(HKDF-SHA256) from ``QALA_KEY_ENCRYPTION_KEY`` — several comma-separated secrets allow rotating it: the first
seals, all open, and ``qala devices reseal`` rewrites every row under the first — or, when that is unset,
from ``CARD_HASH_KEY`` (required in production, fixed in development). A database dump alone therefore
yields no usable validator key. Migration 0009 seals existing rows with the same derivation.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KeyBox", "SealError", "derive"]

PREFIX = "v1:"
INFO = b"qala device signing keys v1"


class SealError(ValueError):
    """A sealed key that no configured key-encryption key opens (wrong key, or a tampered row)."""


def derive(secret: str) -> bytes:
    """The 256-bit AES key of one configured secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"qala", info=INFO).derive(secret.encode())


@dataclass(frozen=True)
class KeyBox:
    """Seals with the first key, opens with any (so the key-encryption key itself can rotate)."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_secret(cls, *secrets: str) -> KeyBox:
        return cls(tuple(derive(s) for s in secrets if s))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KeyBox:
        raw = config["KEY_ENCRYPTION_KEY"] or ""
        secrets = [s.strip() for s in str(raw).split(",") if s.strip()]
        return cls.from_secret(*(secrets or [str(config["CARD_HASH_KEY"])]))

    def seal(self, key_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[0]).encrypt(nonce, secret.encode(), key_id.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, key_id: str, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SealError(f"device key {key_id} is not sealed in a known format")
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        for key in self.keys:
            try:
                return AESGCM(key).decrypt(raw[:12], raw[12:], key_id.encode()).decode()
            except InvalidTag:
                continue
        raise SealError(f"no configured key-encryption key opens device key {key_id}")

    def fingerprint(self) -> str:
        """A short id of the sealing key (for logs; reveals nothing of it)."""
        return hashlib.sha256(self.keys[0]).hexdigest()[:8]
