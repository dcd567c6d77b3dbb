"""Card numbers: 19 digits, known only to the card holder; we keep a keyed hash and a masked form."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["CardNumberError", "code_hash", "generate_card", "mask", "number_hash", "parse_number"]

NUMBER_DIGITS = 19
CODE_DIGITS = 3


class CardNumberError(ValueError):
    """Not a 19-digit card number (the message never repeats the number)."""


_SEPARATORS = re.compile(r"[\s-]")
_NUMBER = re.compile(rf"[0-9]{{{NUMBER_DIGITS}}}")


def parse_number(raw: str) -> str:
    """Strip spaces and dashes; raise ``CardNumberError`` unless 19 digits remain."""
    digits = _SEPARATORS.sub("", raw)
    if not _NUMBER.fullmatch(digits):
        raise CardNumberError(f"a card number has {NUMBER_DIGITS} digits")
    return digits


def number_hash(key: str, number: str) -> str:
    """HMAC-SHA256 of the number under the service's ``CARD_HASH_KEY`` (hex)."""
    return hmac.digest(key.encode(), b"card:" + number.encode(), "sha256").hex()  # one-shot: half hmac.new's cost


def code_hash(key: str, number: str, code: str) -> str:
    """The printed 3-digit code, hashed together with the number so equal codes hash differently."""
    return hmac.new(key.encode(), f"code:{number}:{code}".encode(), hashlib.sha256).hexdigest()


def mask(number: str) -> str:
    """``**** **** **** 1234 567``: only the last seven digits, as printed on receipts."""
    tail = number[-7:]
    return f"**** **** **** {tail[:4]} {tail[4:]}"


def generate_card() -> tuple[str, str]:
    """A fresh random card number and printed code."""
    number = "9643" + "".join(secrets.choice("0123456789") for _ in range(NUMBER_DIGITS - 4))
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    return number, code
