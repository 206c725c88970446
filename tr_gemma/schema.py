"""Column names of the instruction data set (`malhajar/alpaca-gpt4-tr`) and of our own tables."""

from __future__ import annotations

# The Hub data set is bilingual: English Alpaca columns next to their Turkish translations.
ENGLISH_FIELDS = {"instruction": "instruction", "input": "input", "output": "output"}
TURKISH_FIELDS = {
    "instruction": "instruction-turkish",
    "input": "input-turkish",
    "output": "output-turkish",
}
# Not in the Hub data set; our embedded sample and local files may carry a system prompt.
SYSTEM_FIELDS = {"en": "system", "tr": "system-turkish"}

REQUIRED_RAW_COLUMNS: tuple[str, ...] = tuple(TURKISH_FIELDS.values())
OPTIONAL_TEXT_COLUMNS: tuple[str, ...] = (
    *ENGLISH_FIELDS.values(),
    *SYSTEM_FIELDS.values(),
)

# Columns of `clean_instructions` (Turkish only, renamed to neutral names).
CLEAN_COLUMNS: tuple[str, ...] = ("row_id", "system", "instruction", "input", "output")
