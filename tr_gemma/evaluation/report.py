"""Tables and charts of a base-vs-fine-tuned comparison."""

from __future__ import annotations

import pandas as pd


def section_table(base, tuned) -> pd.DataFrame:
    """One row per section plus an 'all' row: n, base and fine-tuned accuracy, delta."""
    rows = []
    for section in sorted(base.per_section):
        b = base.per_section[section]
        row = {"section": section, "n": b["n"], "base": b["accuracy"]}
        if tuned is not None:
            t = tuned.per_section[section]
            row.update(fine_tuned=t["accuracy"], delta=t["accuracy"] - b["accuracy"])
        rows.append(row)
    overall = {"section": "all", "n": base.n, "base": base.accuracy}
    if tuned is not None:
        overall.update(fine_tuned=tuned.accuracy, delta=tuned.accuracy - base.accuracy)
    rows.append(overall)
    return pd.DataFrame(rows)


def comparison_chart(table: pd.DataFrame) -> bytes:
    from tr_gemma.charts import png_bytes, pyplot

    fig, ax = pyplot().subplots(figsize=(9, 4), dpi=110)
    x = range(len(table))
    ax.bar([i - 0.2 for i in x], table["base"], width=0.4, label="base")
    if "fine_tuned" in table:
        ax.bar([i + 0.2 for i in x], table["fine_tuned"], width=0.4, label="fine-tuned")
    ax.set_xticks(list(x), table["section"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("TR-MMLU accuracy by section")
    ax.legend()
    fig.tight_layout()
    return png_bytes(fig)
