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


# Language check for untranslated rows (cleaning's `not_turkish` rule). A cheap, documented
# heuristic, no model: count words that mark Turkish (a letter of çğıöşü, or a common Turkish
# function word) against common English function words. Turkish rows of the embedded sample score
# at least 0.79; their English originals at most 0.5.
_WORD = re.compile(r"[^\W\d_]+")
_TURKISH_LETTERS = frozenset("çğıöşü")
_TURKISH_WORDS = frozenset(
    "ve bir bu da de ile için ne mi mı mu mü çok daha gibi ama veya olarak olan kadar şu ki ya sonra "
    "önce değil var yok nasıl neden hangi ise göre kendi tüm bazı şey nedir bunu bunun şunu onu ona "
    "olur eder yap yaz ver say".split()
)
_ENGLISH_WORDS = frozenset(
    "the and of to is are was were be been this that these those with for from by what which who how "
    "why you your it its an or not can will would should there their they have has do does a".split()
)


def turkish_share(text: str) -> tuple[float | None, int]:
    """Share of Turkish among the language-marking words of `text`, and how many words marked.

    None when no word marks either language (numbers, code, names): too little to judge.
    """
    turkish = english = 0
    for word in _WORD.findall(text):
        plain = word.lower()  # not turkish_lower: English "It" must not become Turkish "ıt"
        if turkish_lower(word) in _TURKISH_WORDS or not _TURKISH_LETTERS.isdisjoint(plain):
            turkish += 1
        elif plain in _ENGLISH_WORDS:
            english += 1
    marked = turkish + english
    return (turkish / marked if marked else None), marked
