"""Cleaning the Turkish instruction data: select Turkish columns, normalise, drop bad rows.

Every dropped row keeps a reason, so nothing disappears silently (rows left in English, for
example, are rejected as `not_turkish`). Rules run in a fixed order and
a row is attributed to the first rule it breaks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pandas as pd

from tr_gemma.schema import CLEAN_COLUMNS, SYSTEM_FIELDS, TURKISH_FIELDS
from tr_gemma.text_normalization import invalid_unicode_reason, looks_mojibake, nfc, turkish_lower, turkish_share

REJECT_REASONS = (
    "null_field",
    "invalid_unicode",
    "mojibake",
    "empty_field",
    "control_token",
    "too_long",
    "not_turkish",
    "ai_identity",
    "duplicate",
)

# GPT-4 distillation artefacts: a model that learns them claims to be someone else's assistant.
_AI_IDENTITY = re.compile(
    r"(bir )?yapay zek[aâ] (dil )?modeli olarak|bir dil modeli olarak|bir yapay zek[aâ] olarak"
    r"|openai tarafından (geliştirilen|eğitilen)|as an ai language model|as an ai model"
)
# Literal Gemma control tokens inside data would be tokenized as real control tokens.
_CONTROL_TOKENS = re.compile(r"<(bos|eos|pad|start_of_turn|end_of_turn|start_of_image|end_of_image)>")


# Fewer language-marking words than this (a number, a name, a code snippet) is too little to judge.
_MIN_MARKED_WORDS = 3


@dataclass(frozen=True)
class CleaningRules:
    drop_ai_identity: bool = True
    max_chars_per_field: int = 20_000
    # Rows whose Turkish-marked share of language-marking words is below this were left
    # untranslated (see text_normalization.turkish_share); 0 switches the rule off.
    min_turkish_share: float = 0.5


@dataclass
class CleaningResult:
    clean: pd.DataFrame
    rejects: pd.DataFrame
    input_rows: int

    @property
    def counts(self) -> dict[str, int]:
        counted = self.rejects["reason"].value_counts().to_dict() if len(self.rejects) else {}
        return {reason: int(counted.get(reason, 0)) for reason in REJECT_REASONS}


def turkish_records(raw: pd.DataFrame) -> list[dict]:
    """The Turkish columns under neutral names, never the English ones (one dict per row)."""
    columns = {neutral: raw[column].tolist() for neutral, column in TURKISH_FIELDS.items()}
    system_column = SYSTEM_FIELDS["tr"]
    columns["system"] = raw[system_column].tolist() if system_column in raw.columns else [""] * len(raw)
    return [
        {"row_id": i, **{name: columns[name][i] for name in ("system", "instruction", "input", "output")}}
        for i in range(len(raw))
    ]


def clean_instructions(raw: pd.DataFrame, rules: CleaningRules = CleaningRules()) -> CleaningResult:
    records = turkish_records(raw)
    text_fields = ("system", "instruction", "input", "output")
    kept_rows: list[dict] = []
    rejects: list[dict] = []
    seen: dict[str, int] = {}

    for record in records:
        reason, detail = _first_violation(record, rules)
        if reason is None:
            for field in text_fields:
                record[field] = nfc(record[field] or "")
            reason, detail = _content_violation(record, rules)
        if reason is None:
            key = _dedup_key(record)
            if key in seen:
                reason, detail = "duplicate", f"same text as row {seen[key]}"
            else:
                seen[key] = record["row_id"]
        if reason is None:
            kept_rows.append(record)
        else:
            rejects.append({**record, "reason": reason, "detail": detail})

    for record in rejects:  # nulls in rejected rows become "" so the file is all-strings
        for field in text_fields:
            record[field] = record[field] if isinstance(record[field], str) else ""
    clean = pd.DataFrame(kept_rows, columns=list(CLEAN_COLUMNS))
    reject_frame = pd.DataFrame(rejects, columns=[*CLEAN_COLUMNS, "reason", "detail"])
    return CleaningResult(clean=clean, rejects=reject_frame, input_rows=len(records))


def _first_violation(record: dict, rules: CleaningRules) -> tuple[str | None, str]:
    for field in ("instruction", "output"):
        value = record[field]
        if value is None or (isinstance(value, float) and value != value):
            return "null_field", f"{field} is null"
    for field in ("system", "input"):
        value = record[field]
        if value is None or (isinstance(value, float) and value != value):
            record[field] = ""
    for field in ("system", "instruction", "input", "output"):
        why = invalid_unicode_reason(record[field])
        if why:
            # Lone surrogates cannot be written to parquet/JSON: keep them visible as escapes.
            record[field] = record[field].encode("utf-8", "backslashreplace").decode("utf-8")
            return "invalid_unicode", f"{field}: {why}"
        if looks_mojibake(record[field]):
            return "mojibake", f"{field}: UTF-8 text decoded as Latin-1 (e.g. 'Ã¼' for 'ü')"
    return None, ""


def _content_violation(record: dict, rules: CleaningRules) -> tuple[str | None, str]:
    for field in ("instruction", "output"):
        if not record[field]:
            return "empty_field", f"{field} is empty or whitespace"
    for field in ("system", "instruction", "input", "output"):
        if _CONTROL_TOKENS.search(record[field]):
            return "control_token", f"{field} contains a literal Gemma control token"
        if len(record[field]) > rules.max_chars_per_field:
            return "too_long", f"{field} has {len(record[field])} characters"
    share, marked = turkish_share(" ".join(record[f] for f in ("system", "instruction", "input", "output")))
    if share is not None and marked >= _MIN_MARKED_WORDS and share < rules.min_turkish_share:
        return "not_turkish", f"Turkish share {share:.2f} of {marked} marking words (limit {rules.min_turkish_share})"
    if rules.drop_ai_identity:
        for field in ("instruction", "output"):
            if _AI_IDENTITY.search(turkish_lower(record[field])):
                return "ai_identity", f"{field} contains AI-identity boilerplate"
    return None, ""


def _dedup_key(record: dict) -> str:
    joined = "\x1f".join(record[f] for f in ("system", "instruction", "input", "output"))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()
