"""Reading instruction data from local files (parquet, JSON, JSONL, CSV) with exact error locations.

Every problem is reported as a `DataFileError` naming the file, the first bad row (1-based, as a
person counts data rows) and the column, so a user can open the file and fix it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pandas as pd

from tr_gemma.errors import DataFileError
from tr_gemma.schema import OPTIONAL_TEXT_COLUMNS, REQUIRED_RAW_COLUMNS

SUPPORTED_SUFFIXES = (".parquet", ".json", ".jsonl", ".csv")
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_instruction_file(path: str | Path) -> pd.DataFrame:
    """Read and validate a local instruction file in the `alpaca-gpt4-tr` schema."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
    elif suffix == ".jsonl":
        frame = pd.DataFrame(_read_json_lines(path))
    elif suffix == ".json":
        frame = _read_json(path)
    elif suffix == ".csv":
        frame = _read_csv(path)
    else:
        raise DataFileError(
            path, f"unsupported file type '{suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    validate_instruction_frame(frame, source=path)
    return frame


def validate_instruction_frame(frame: pd.DataFrame, source: str | Path) -> None:
    """Check required columns and that every text cell is a string (or empty/null)."""
    missing = [c for c in REQUIRED_RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFileError(
            source,
            f"missing required column(s) {missing}; found columns {sorted(map(str, frame.columns))}. "
            f"The file must use the alpaca-gpt4-tr schema ({', '.join(REQUIRED_RAW_COLUMNS)}).",
        )
    if frame.empty:
        raise DataFileError(source, "the file has no rows")
    for column in (*REQUIRED_RAW_COLUMNS, *OPTIONAL_TEXT_COLUMNS):
        if column not in frame.columns:
            continue
        for position, value in enumerate(frame[column].tolist(), start=1):
            if value is None or isinstance(value, str) or _is_nan(value):
                continue
            raise DataFileError(
                source,
                f"expected text, found {type(value).__name__} {value!r:.60}",
                row=position,
                column=column,
            )


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFileError(
            path, f"invalid UTF-8 at line {line} (byte offset {exc.start}); save the file as UTF-8"
        ) from None


def _read_json_lines(path: Path) -> list[dict]:
    records: list[dict] = []
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFileError(
                    path, "invalid UTF-8; save the file as UTF-8", row=line_number
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(
                    path, f"not a complete JSON object ({exc.msg}); the line may be truncated",
                    row=line_number,
                ) from None
            if not isinstance(record, dict):
                raise DataFileError(
                    path, f"expected a JSON object, found {type(record).__name__}", row=line_number
                )
            _reject_lone_surrogates(path, line_number, record)
            records.append(record)
    return records


def _read_json(path: Path) -> pd.DataFrame:
    text = _decode(path, path.read_bytes())
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file may also hold JSON lines; fall back before reporting.
        if exc.msg == "Extra data":
            return pd.DataFrame(_read_json_lines(path))
        raise DataFileError(
            path, f"invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "the file may be truncated"
        ) from None
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    if not isinstance(payload, list):
        raise DataFileError(path, "expected a JSON list of objects (or JSON lines)")
    for position, record in enumerate(payload, start=1):
        if not isinstance(record, dict):
            raise DataFileError(
                path, f"expected a JSON object, found {type(record).__name__}", row=position
            )
        _reject_lone_surrogates(path, position, record)
    return pd.DataFrame(payload)


def _reject_lone_surrogates(path: Path, row: int, record: dict) -> None:
    # JSON escapes such as "\ud800" decode to text that cannot be stored or tokenized.
    for column, value in record.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            raise DataFileError(path, "lone surrogate escape (broken \\u escape)", row=row, column=str(column))


def _read_csv(path: Path) -> pd.DataFrame:
    text = _decode(path, path.read_bytes())  # pandas would report bad bytes without a row
    _reject_short_rows(path, text)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.ParserError as exc:
        raise DataFileError(path, f"malformed CSV: {exc}") from None


def _reject_short_rows(path: Path, text: str) -> None:
    # pandas fills missing trailing fields with "" silently; a row cut short is a truncated file.
    records = csv.reader(io.StringIO(text, newline=""))
    width = len(next(records, []))
    for row, record in enumerate(records, start=1):
        if record and len(record) < width:
            raise DataFileError(
                path, f"only {len(record)} of {width} columns; the file may be truncated", row=row
            )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged footer or schema
        raise DataFileError(path, f"cannot read parquet ({type(exc).__name__}: {exc})") from None
