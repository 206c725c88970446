"""Multiple-choice questions of TR-MMLU and TurkishMMLU in one canonical table.

Canonical columns: `section`, `question`, `choices` (4 or 5 strings), `answer` (0-based int),
`split` ("test" or "dev") and `schema` (the benchmark it came in; each has its own lm-eval task).
The two benchmarks differ:

- TR-MMLU (Bayram et al. 2024, `alibayram/turkish_mmlu`): `bolum`, `soru`, `secenekler` (a list,
  a string in older revisions), `cevap` (0-based int).
- TurkishMMLU (Yüksel et al. 2024, `AYueksel/TurkishMMLU`): `question`, `choices` (5), `answer`
  (a letter A-E), subject from `subject` (or the config name).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd

from tr_gemma.errors import DataFileError, PipelineInputError

LETTERS = "ABCDE"
TR_MMLU_COLUMNS = ("bolum", "soru", "secenekler", "cevap")
TURKISHMMLU_COLUMNS = ("question", "choices", "answer")
CANONICAL = ("section", "question", "choices", "answer", "split", "schema")


def detect_schema(columns) -> str:
    columns = set(columns)
    if set(TR_MMLU_COLUMNS) <= columns:
        return "tr_mmlu"
    if set(TURKISHMMLU_COLUMNS) <= columns:
        return "turkishmmlu"
    raise PipelineInputError(
        f"unknown question schema: columns {sorted(columns)}; expected TR-MMLU {list(TR_MMLU_COLUMNS)} "
        f"or TurkishMMLU {list(TURKISHMMLU_COLUMNS)}"
    )


def canonical_questions(frame: pd.DataFrame, source: str, split: str, section: str | None = None) -> pd.DataFrame:
    """Validate and convert a frame of either schema; errors name the source and the row."""
    schema = detect_schema(frame.columns)
    rows = []
    for number, record in enumerate(frame.to_dict("records"), start=1):
        if schema == "tr_mmlu":
            question, choices, answer, sec = record["soru"], record["secenekler"], record["cevap"], record["bolum"]
            if isinstance(choices, str):  # older revisions store the list as text
                choices = _parse_choice_string(choices, source, number)
            answer = _int_answer(answer, source, number)
        else:
            question, choices = record["question"], record["choices"]
            subject = record.get("subject")
            sec = subject if isinstance(subject, str) and subject else (section or "TurkishMMLU")
            letter = str(record["answer"]).strip().upper()
            if letter not in LETTERS:
                raise DataFileError(source, f"answer '{record['answer']}' is not a letter A-E", row=number, column="answer")
            answer = LETTERS.index(letter)
        choices = list(choices) if not isinstance(choices, str) else choices
        if not isinstance(question, str) or not question.strip():
            raise DataFileError(source, "empty question", row=number)
        if not isinstance(choices, list) or len(choices) not in (4, 5) or not all(isinstance(c, str) and c.strip() for c in choices):
            raise DataFileError(source, f"expected 4 or 5 non-empty options, found {choices!r:.80}", row=number)
        if not 0 <= answer < len(choices):
            raise DataFileError(source, f"answer index {answer} outside the {len(choices)} options", row=number)
        rows.append({"section": str(sec), "question": question.strip(), "choices": [c.strip() for c in choices],
                     "answer": answer, "split": split, "schema": schema})
    if not rows:
        raise DataFileError(source, "no questions")
    return pd.DataFrame(rows, columns=list(CANONICAL))


def _parse_choice_string(text: str, source, row: int) -> list:
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            if isinstance(value, list):
                return value
        except (ValueError, SyntaxError):
            continue
    raise DataFileError(source, f"cannot read options {text!r:.60}", row=row, column="secenekler")


def _int_answer(value, source, row: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DataFileError(source, f"answer {value!r} is not an integer index", row=row, column="cevap") from None
    if number != value and not isinstance(value, str):
        raise DataFileError(source, f"answer {value!r} is not an integer index", row=row, column="cevap")
    return number


def read_question_file(path: str | Path, split: str = "test") -> pd.DataFrame:
    """A local JSON, JSONL, parquet or CSV file in either schema."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False)
    elif suffix in (".json", ".jsonl"):
        text = path.read_bytes()
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[: exc.start].count(b"\n") + 1
            raise DataFileError(path, f"invalid UTF-8 at line {line}") from None
        records = []
        if suffix == ".json" and decoded.lstrip().startswith("["):
            records = json.loads(decoded)
        else:
            for number, line in enumerate(decoded.splitlines(), start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataFileError(path, f"not a complete JSON object ({exc.msg})", row=number) from None
        frame = pd.DataFrame(records)
    else:
        raise DataFileError(path, f"unsupported file type '{suffix}'; use .json, .jsonl, .parquet or .csv")
    try:
        return canonical_questions(frame, path, split)
    except PipelineInputError as exc:
        raise DataFileError(path, str(exc)) from None


def split_dev_from_test(questions: pd.DataFrame, per_section: int = 2) -> pd.DataFrame:
    """For sources without a dev split: the first rows of each section become few-shot examples
    and leave the test set, so a question is never shown as its own example."""
    if (questions["split"] == "dev").any():
        return questions
    questions = questions.copy()
    first = questions.groupby("section").head(per_section).index
    questions.loc[first, "split"] = "dev"
    return questions
