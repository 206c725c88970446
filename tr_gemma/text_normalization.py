"""Unicode and Turkish-aware text helpers used by cleaning, analysis and decontamination."""

from __future__ import annotations

import re
import unicodedata

# UTF-8 Turkish text decoded as Latin-1/CP1252 ("ü" -> "Ã¼", "ş" -> "ÅŸ", "ı" -> "Ä±").
# Lead bytes 0xC3-0xC5 become Ã/Ä/Å; the continuation byte becomes a Latin-1 supplement char
# or one of the CP1252 punctuation letters. Real Turkish never has these pairs.
_MOJIBAKE = re.compile(
    "[\u00c2\u00c3\u00c4\u00c5][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
# C0/C1 control characters other than tab and newline (carriage returns are normalised away).
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def nfc(text: str) -> str:
    """NFC-normalise and unify line endings; surrounding whitespace is stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def turkish_lower(text: str) -> str:
    """Lower-case with Turkish rules: I -> ı and İ -> i (Python's str.lower() gets both wrong)."""
    return text.replace("I", "ı").replace("İ", "i").lower()


def looks_mojibake(text: str) -> bool:
    return _MOJIBAKE.search(text) is not None


def invalid_unicode_reason(text: str) -> str | None:
    """Why a string cannot be trained on as text, or None when it is fine."""
    if _SURROGATE.search(text):
        return "lone surrogate code point"
    if "\ufffd" in text:
        return "U+FFFD replacement character (text was decoded lossily)"
    if _CONTROL.search(text):
        return "control character"
    return None
