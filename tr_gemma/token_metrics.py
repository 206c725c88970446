"""Token-efficiency metrics for Turkish text: words, fertility, compression, parity, lengths.

Word definition (documented in the token_efficiency asset): after NFC normalisation, a word is a
maximal run of letters and digits in which an apostrophe (' ’) followed by letters (a suffix), a
hyphen, or a dot/comma between digits joins two runs. So "İstanbul'da", "Türkiye’nin", "COVID-19",
"e-posta" and "1.234,56" are one word each, "%15" is the word "15", "3/4" is two words;
punctuation, symbols and emoji are not words. Text is never lower-cased
(Python's lower() mangles Turkish İ/ı), and no special tokens are counted.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:(?:['’][^\W\d_]+)|(?:-[^\W_]+)|(?:(?<=\d)[.,]\d+))*")


def words(text: str) -> list[str]:
    """The words of a text by the definition above."""
    return _WORD.findall(unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class FieldMetrics:
    texts: int
    words: int
    tokens: int
    characters: int
    utf8_bytes: int
    continued_words: int  # word occurrences that need 2+ tokens on their own

    @property
    def fertility(self) -> float:
        return self.tokens / self.words if self.words else float("nan")

    @property
    def continued_word_share(self) -> float:
        return self.continued_words / self.words if self.words else float("nan")

    @property
    def chars_per_token(self) -> float:
        return self.characters / self.tokens if self.tokens else float("nan")

    @property
    def bytes_per_token(self) -> float:
        return self.utf8_bytes / self.tokens if self.tokens else float("nan")


def standalone_word_tokens(unique_words: Sequence[str], encode_batch: Callable[[list[str]], list[list[int]]]) -> dict[str, int]:
    """Tokens per word as it appears mid-sentence (after a space), once per unique word."""
    encoded = encode_batch([" " + w for w in unique_words])
    return {w: len(ids) for w, ids in zip(unique_words, encoded)}


def length_percentiles(lengths: Sequence[int]) -> dict[str, float]:
    values = np.asarray(lengths)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


def packing_efficiency(lengths: Sequence[int], max_length: int) -> float:
    """Share of real tokens in sequences of `max_length` filled by best-fit-decreasing packing.

    Examples longer than `max_length` are truncated to it (as the trainer does).
    """
    clipped = sorted((min(n, max_length) for n in lengths), reverse=True)
    free: list[int] = []  # spare room of each open sequence, kept sorted for best fit
    sequences = 0
    for n in clipped:
        index = bisect.bisect_left(free, n)
        if index < len(free):
            spare = free.pop(index) - n
        else:
            sequences += 1
            spare = max_length - n
        if spare > 0:
            bisect.insort(free, spare)
    return sum(clipped) / (sequences * max_length) if sequences else float("nan")
