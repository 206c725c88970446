"""User-supplied Turkish text for the token-efficiency analysis (txt, JSON or JSONL files)."""

from __future__ import annotations

import json
from pathlib import Path

from tr_gemma.errors import DataFileError


def read_text_corpus(path: str | Path, field: str = "text") -> list[str]:
    """Texts of a file: .txt (one text per paragraph), .json (list of strings or objects) or .jsonl.

    Objects must carry `field`; a missing field or a non-string value names the file and row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataFileError(path, f"invalid UTF-8 at line {line}") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [p.strip() for p in content.replace("\r\n", "\n").split("\n\n") if p.strip()]
    if suffix == ".jsonl":
        items = []
        for number, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataFileError(path, f"not a complete JSON value ({exc.msg})", row=number) from None
    elif suffix == ".json":
        try:
            payload = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataFileError(path, f"invalid JSON at line {exc.lineno} ({exc.msg})") from None
        if not isinstance(payload, list):
            raise DataFileError(path, "expected a JSON list of strings or objects")
        items = list(enumerate(payload, start=1))
    else:
        raise DataFileError(path, f"unsupported file type '{suffix}'; use .txt, .json or .jsonl")
    texts = []
    for row, item in items:
        value = item.get(field) if isinstance(item, dict) else item
        if isinstance(item, dict) and field not in item:
            raise DataFileError(path, f"no field '{field}' (set text_field)", row=row)
        if not isinstance(value, str):
            raise DataFileError(path, f"expected text, found {type(value).__name__}", row=row, column=field)
        texts.append(value)
    return texts
