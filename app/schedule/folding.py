"""Fold stop names and queries to one Latin spelling, so Абай, Абая, Abai, Abay and Abaı all meet.

Riders in Kazakh cities type the same street in Russian or Kazakh Cyrillic, in the 2018 or 2021 Kazakh Latin
alphabets (á ǵ ı ń ó ú ý / ä ğ ı ñ ö ū ü ş ç), or in everyday Russian-style Latin (Dostyk, Dostik, Ablai Khan).
Each word is casefolded and transliterated letter by letter into plain ASCII, then the spellings that differ
between those systems are merged: every i-like sound (и й ы і ı y) becomes ``i``, ``kh``/х becomes ``h``,
``zh``/ж/j becomes ``j``, ``q``/қ becomes ``k``, ``ng``/ң becomes ``n``, ё and э become ``e`` and doubled letters
collapse. The result (a word's *key*) is lossy on purpose: two spellings of one name get the same key, and both
the index and the query go through the same steps, so equal keys mean "the same word as a rider would read it".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["FoldedWord", "fold_text", "fold_word", "is_cyrillic", "stem"]

# Russian and Kazakh Cyrillic, and the Latin letters of the Kazakh alphabets that carry their own sound
# (or that NFD would not take apart): everything else is decomposed and loses its accents.
_LETTERS = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "j", "з": "z", "и": "i", "й": "i",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f",
    "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "iu",
    "я": "ia",
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "і": "i",
    "ı": "i", "ý": "u", "ş": "sh", "ç": "ch", "ǵ": "g", "ğ": "g", "ń": "n", "ñ": "n", "ū": "u",
    "ß": "ss", "æ": "ae", "ø": "o", "đ": "d", "ł": "l",
}
# after transliteration: letter groups that the Latin systems write differently for one sound (order matters:
# "kh" before the lone "h" rules, "zh" before "j", "y" last so "ya"/"yu" become "ia"/"iu" like я/ю)
_MERGES = (("kh", "h"), ("gh", "g"), ("zh", "j"), ("dj", "j"), ("ng", "n"), ("q", "k"), ("w", "v"), ("y", "i"))
_WORD = re.compile(r"[^\W_]+")
_DOUBLED = re.compile(r"(.)\1+")
_VOWELS = frozenset("aeiou")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
STEM_MIN = 5  # shorter words ("Абай", "хан", "би", route numbers) are never cut


@dataclass(frozen=True)
class FoldedWord:
    """One word as written (``surface``) and its key."""

    surface: str
    key: str


def _letter(char: str) -> str:
    mapped = _LETTERS.get(char)
    if mapped is not None:
        return mapped
    if char.isascii():
        return char
    # á ä ó ö é ü ... → the base letter; letters of other scripts stay as they are
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    return base or char


@lru_cache(maxsize=1 << 16)  # a city's names repeat a few hundred street words thousands of times
def fold_word(word: str) -> str:
    """The key of one word: casefolded, transliterated to Latin and merged (see the module docstring)."""
    latin = "".join(_letter(c) for c in unicodedata.normalize("NFC", word).casefold())
    for written, sound in _MERGES:
        latin = latin.replace(written, sound)
    return _DOUBLED.sub(r"\1", latin)


def fold_text(text: str) -> list[FoldedWord]:
    """The words of ``text`` (letters and digits; punctuation and dashes separate them) with their keys."""
    words = []
    for surface in _WORD.findall(unicodedata.normalize("NFC", text)):
        key = fold_word(surface)
        if key:  # a lone "ь" folds to nothing
            words.append(FoldedWord(surface, key))
    return words


def stem(key: str) -> str:
    """``key`` without one final vowel when it is long enough: Абая → abaia → abai, Сейфуллина → seifulin.

    Russian and Kazakh inflect the ends of names (Абай → Абая, Абылай хан → Абылай хана), and the
    inflected form's key is the base form's key plus a vowel more often than not.
    """
    if len(key) >= STEM_MIN and key[-1] in _VOWELS and not (key[-1] == "i" and key[-2] in _VOWELS):
        return key[:-1]
    return key  # a final "ai", "oi" is a й (Абай, Навои): the base form, not an ending


def is_cyrillic(text: str) -> bool:
    return _CYRILLIC.search(text) is not None
