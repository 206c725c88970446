"""Training/evaluation overlap: word n-grams shared by a training example and a benchmark question.

Both sides are NFC-normalised, lower-cased with Turkish rules (I -> ı, İ -> i) and reduced to
words, so "İSTANBUL'un" and "istanbul'un" match, while "Iğdır" does not match "iğdır".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tr_gemma.text_normalization import turkish_lower

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W\d_]+)?")


def normalised_words(text: str) -> list[str]:
    return _TOKEN.findall(turkish_lower(unicodedata.normalize("NFC", text)))


def ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    """Word n-grams in text order (so the first shared one reported is stable)."""
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


@dataclass(frozen=True)
class Leak:
    row_id: int
    question_index: int
    ngram: str
    snippet: str


def find_leaks(training: list[tuple[int, str]], questions: list[str], n: int = 8) -> list[Leak]:
    """Training rows sharing at least one n-gram with a question (question text plus options)."""
    index: dict[tuple[str, ...], int] = {}
    for number, question in enumerate(questions):
        for gram in ngrams(normalised_words(question), n):
            index.setdefault(gram, number)
    leaks = []
    for row_id, text in training:
        words = normalised_words(text)
        for gram in ngrams(words, n):
            if gram in index:
                leaks.append(Leak(row_id, index[gram], " ".join(gram), text[:160]))
                break
    return leaks
