"""Local instruction files: every supported format, and clear errors for malformed ones."""

import json

import pandas as pd
import pytest

from tests.conftest import instruction_row, write_jsonl
from tr_gemma.errors import DataFileError
from tr_gemma.instruction_files import read_instruction_file

ROWS = [instruction_row(instruction="Bir şehir söyle.", output="İzmir."), instruction_row(output="Ankara.")]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_format_reads_the_same_rows(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    frame = pd.DataFrame(ROWS)
    if suffix == ".jsonl":
        write_jsonl(path, ROWS)
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    loaded = read_instruction_file(path)
    assert loaded["instruction-turkish"].tolist() == ["Bir şehir söyle.", "Bir talimat yaz."]
    assert loaded["output-turkish"].tolist() == ["İzmir.", "Ankara."]


def test_missing_column_names_the_file_and_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "output-turkish"} for r in ROWS]
    path = write_jsonl(tmp_path / "eksik.jsonl", rows)
    with pytest.raises(DataFileError, match=r"eksik\.jsonl: missing required column\(s\) \['output-turkish'\]"):
        read_instruction_file(path)


def test_non_string_field_names_file_row_and_column(tmp_path):
    rows = [ROWS[0], ROWS[1], {**ROWS[1], "output-turkish": 42}]
    path = write_jsonl(tmp_path / "tip.jsonl", rows)
    with pytest.raises(DataFileError, match=r"tip\.jsonl, row 3, column 'output-turkish': expected text, found int"):
        read_instruction_file(path)


def test_invalid_utf8_names_the_first_bad_row(tmp_path):
    path = tmp_path / "bozuk.jsonl"
    good = json.dumps(ROWS[0], ensure_ascii=False).encode()
    bad = json.dumps(ROWS[1], ensure_ascii=False).encode().replace(b"Ankara", b"Ank\xff\xfeara")
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    with pytest.raises(DataFileError, match=r"bozuk\.jsonl, row 2: invalid UTF-8"):
        read_instruction_file(path)


def test_invalid_utf8_in_csv_names_the_line(tmp_path):
    path = tmp_path / "bozuk.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    path.write_bytes(path.read_bytes().replace("İzmir".encode(), b"\xdd" + b"zmir"))
    with pytest.raises(DataFileError, match=r"bozuk\.csv: invalid UTF-8 at line 2"):
        read_instruction_file(path)


def test_truncated_json_line_names_the_row(tmp_path):
    path = tmp_path / "kesik.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in ROWS]
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"kesik\.jsonl, row 2: not a complete JSON object"):
        read_instruction_file(path)


def test_truncated_json_array_names_the_position(tmp_path):
    path = tmp_path / "kesik.json"
    text = json.dumps(ROWS, ensure_ascii=False, indent=1)
    path.write_text(text[: len(text) - 40], encoding="utf-8")
    with pytest.raises(DataFileError, match=r"kesik\.json: invalid JSON at line \d+"):
        read_instruction_file(path)


def test_unsupported_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="unsupported file type '.txt'"):
        (tmp_path / "a.txt").write_text("x")
        read_instruction_file(tmp_path / "a.txt")
    with pytest.raises(DataFileError, match="file not found"):
        read_instruction_file(tmp_path / "yok.jsonl")


def test_lone_surrogate_escape_names_row_and_column(tmp_path):
    path = tmp_path / "vekil.jsonl"
    lines = [json.dumps(ROWS[0], ensure_ascii=True), json.dumps(ROWS[1], ensure_ascii=True).replace("Ankara", "Ank\\ud800ara")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"vekil\.jsonl, row 2, column 'output-turkish': lone surrogate"):
        read_instruction_file(path)
