"""PNG charts for the token-efficiency report (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fertility_chart(totals_tr: pd.DataFrame, totals_en: pd.DataFrame) -> bytes:
    """Tokens per word by tokenizer, Turkish next to English."""
    plt = pyplot()
    labels = list(totals_tr["tokenizer_label"])
    english = dict(zip(totals_en["tokenizer"], totals_en["fertility"]))
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    ax.bar([i - 0.2 for i in x], totals_tr["fertility"], width=0.4, label="Turkish")
    ax.bar([i + 0.2 for i in x], [english.get(t, 0) for t in totals_tr["tokenizer"]], width=0.4, label="English")
    for i, value in enumerate(totals_tr["fertility"]):
        ax.text(i - 0.2, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), labels, rotation=15, fontsize=8)
    ax.set_ylabel("tokens per word (fertility)")
    ax.set_title("Fertility by tokenizer (lower is better)")
    ax.legend()
    fig.tight_layout()
    return png_bytes(fig)


def length_histogram(lengths: Sequence[int], max_seq_lengths: dict[str, int]) -> bytes:
    """Gemma 3 tokens per training example, with each size's max_seq_length marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    ax.hist(lengths, bins=60, color="#4c72b0")
    for limit in sorted(set(max_seq_lengths.values())):
        sizes = ", ".join(s for s, v in max_seq_lengths.items() if v == limit)
        ax.axvline(limit, color="#c44e52", linestyle="--")
        ax.text(limit, ax.get_ylim()[1] * 0.95, f"max_seq_length {limit}\n({sizes}) ", color="#c44e52",
                fontsize=8, ha="right", va="top")
    ax.set_xlabel("Gemma 3 tokens per rendered training example")
    ax.set_ylabel("examples")
    ax.set_title("Token length of training examples")
    fig.tight_layout()
    return png_bytes(fig)


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()
