"""A corpus of the real data set's size, built from the embedded sample (for benchmarks only).

Each copy of the sample gets a numbered suffix on its instructions, so no row is a duplicate and
cleaning keeps them all.
"""

from __future__ import annotations

import pandas as pd

from tr_gemma.embedded_data import INSTRUCTIONS_SAMPLE
from tr_gemma.instruction_files import read_instruction_file

DATASET_ROWS = 52_002  # malhajar/alpaca-gpt4-tr


def synthetic_corpus(rows: int = DATASET_ROWS) -> pd.DataFrame:
    sample = read_instruction_file(INSTRUCTIONS_SAMPLE)
    copies = []
    for copy in range(-(-rows // len(sample))):
        frame = sample.copy()
        frame["instruction-turkish"] = frame["instruction-turkish"] + f" (Örnek {copy + 1})"
        frame["instruction"] = frame["instruction"] + f" (Example {copy + 1})"
        copies.append(frame)
    return pd.concat(copies, ignore_index=True).head(rows)
