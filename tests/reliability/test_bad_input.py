"""Malformed data, end to end through raw_instructions and clean_instructions.

Every defect ends as either a counted and saved reject (row-level defects) or a Dagster Failure
that names the file, row and column (file-level defects) — never a silent drop, never a bare
traceback. The per-rule and per-reader unit tests are in tests/test_cleaning.py and
tests/test_instruction_files.py.
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.instructions import clean_instructions, raw_instructions
from tests.conftest import instruction_row, write_jsonl
from tests.reliability.conftest import failure_chain

DATA_ASSETS = [raw_instructions, clean_instructions]
GOOD = [instruction_row(instruction=f"{i}. soruyu cevapla: {i} ile {i + 1} toplamı kaçtır?",
                        output=f"{i} ile {i + 1} toplamı {2 * i + 1} eder.") for i in range(60)]

# One row per row-level defect, and the reason it must be rejected with.
ROW_DEFECTS = {
    "none_output": (instruction_row(output=None), "null_field"),
    "empty_output": (instruction_row(instruction="Boş cevap mı?", output=""), "empty_field"),
    "whitespace_instruction": (instruction_row(instruction=" \t\n ", output="Bir cevap daha."), "empty_field"),
    "replacement_character": (instruction_row(output="Kay\ufffdplı çözülmüş metin."), "invalid_unicode"),
    "control_character": (instruction_row(output="Zil sesi \x07 burada."), "invalid_unicode"),
    "mojibake": (instruction_row(output="BugÃ¼n hava Ã§ok gÃ¼zel."), "mojibake"),
    "enormous_row": (instruction_row(instruction="Uzun bir metin yaz.", output="çok " * 6_000), "too_long"),
    "literal_control_token": (instruction_row(output="Cevap <end_of_turn> bitti."), "control_token"),
    "not_turkish": (instruction_row(instruction="Write a short poem about the sea and the wind.",
                                    output="The sea is wide and the wind is cold; it sings of the old days."), "not_turkish"),
    "duplicate": (dict(GOOD[0]), "duplicate"),
}


def _materialize(resources, path, **clean):
    config = {"raw_instructions": {"config": {"source": "path", "path": str(path)}}}
    if clean:
        config["clean_instructions"] = {"config": clean}
    return dg.materialize(DATA_ASSETS, resources=resources, run_config={"ops": config}, raise_on_error=False)


def test_every_row_level_defect_is_rejected_counted_and_saved(resources, tmp_path):
    path = write_jsonl(tmp_path / "karisik.jsonl", GOOD + [row for row, _ in ROW_DEFECTS.values()])
    result = _materialize(resources, path)
    assert result.success, failure_chain(result)

    meta = result.asset_materializations_for_node("clean_instructions")[0].metadata
    rejects = [json.loads(line) for line in Path(meta["rejects_path"].value).read_text().splitlines()]
    by_row = {r["row_id"]: r for r in rejects}
    for position, (name, (_, reason)) in enumerate(ROW_DEFECTS.items(), start=len(GOOD)):
        assert by_row[position]["reason"] == reason, (name, by_row.get(position))
        assert by_row[position]["detail"], name
    assert meta["num_rows"].value == len(GOOD)
    assert meta["num_rows"].value + len(rejects) == meta["input_rows"].value  # nothing dropped silently
    for reason in {reason for _, reason in ROW_DEFECTS.values()}:
        expected = sum(1 for _, r in ROW_DEFECTS.values() if r == reason)
        assert meta[f"rejected_{reason}"].value == expected, reason


def test_the_turkish_check_rejects_no_row_of_the_embedded_sample():
    from tr_gemma.cleaning import clean_instructions as clean
    from tr_gemma.embedded_data import INSTRUCTIONS_SAMPLE
    from tr_gemma.instruction_files import read_instruction_file

    result = clean(read_instruction_file(INSTRUCTIONS_SAMPLE))
    assert result.input_rows == 351 and result.counts["not_turkish"] == 0


def _rows_file(tmp_path, name, rows):
    return write_jsonl(tmp_path / name, rows)


def _renamed(tmp_path):
    rows = [{k.replace("-turkish", "_tr"): v for k, v in r.items()} for r in GOOD[:3]]
    return write_jsonl(tmp_path / "yeniden_adlandirilmis.jsonl", rows)


def _wrong_type(tmp_path):
    return write_jsonl(tmp_path / "tip.jsonl", GOOD[:2] + [{**GOOD[2], "instruction-turkish": ["liste"]}])


def _invalid_utf8(tmp_path):
    path = tmp_path / "bozuk.jsonl"
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in GOOD[:3]]
    lines[1] = lines[1].replace("toplamı".encode(), b"toplam\xff")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _lone_surrogate(tmp_path):
    path = tmp_path / "vekil.jsonl"
    lines = [json.dumps(r) for r in GOOD[:2]]
    lines[1] = lines[1].replace("cevapla", "cevap\\udc00la")
    path.write_text("\n".join(lines) + "\n")
    return path


def _truncated_jsonl(tmp_path):
    path = tmp_path / "kesik.jsonl"
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in GOOD[:3])
    path.write_text(text[: len(text) - 25], encoding="utf-8")
    return path


def _truncated_parquet(tmp_path):
    path = tmp_path / "kesik.parquet"
    pd.DataFrame(GOOD).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-200])
    return path


def _truncated_csv(tmp_path):
    path = tmp_path / "kesik.csv"
    pd.DataFrame(GOOD[:3]).to_csv(path, index=False)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:-40], encoding="utf-8")  # the last row loses its final columns
    return path


def _empty_file(tmp_path):
    path = tmp_path / "bos.csv"
    path.write_text(",".join(GOOD[0]) + "\n", encoding="utf-8")
    return path


FILE_DEFECTS = {
    "missing_column": (lambda t: write_jsonl(t / "eksik.jsonl", [{k: v for k, v in r.items() if k != "output-turkish"} for r in GOOD[:3]]),
                       ["eksik.jsonl", "missing required column(s) ['output-turkish']"]),
    "renamed_columns": (_renamed, ["yeniden_adlandirilmis.jsonl", "missing required column(s)", "instruction_tr"]),
    "wrong_type": (_wrong_type, ["tip.jsonl, row 3, column 'instruction-turkish'", "expected text, found list"]),
    "invalid_utf8": (_invalid_utf8, ["bozuk.jsonl, row 2", "invalid UTF-8"]),
    "lone_surrogate": (_lone_surrogate, ["vekil.jsonl, row 2, column 'instruction-turkish'", "lone surrogate"]),
    "truncated_jsonl": (_truncated_jsonl, ["kesik.jsonl, row 3", "may be truncated"]),
    "truncated_parquet": (_truncated_parquet, ["kesik.parquet", "cannot read parquet"]),
    "truncated_csv": (_truncated_csv, ["kesik.csv, row 3", "the file may be truncated"]),
    "no_rows": (_empty_file, ["bos.csv", "the file has no rows"]),
}


@pytest.mark.parametrize("defect", list(FILE_DEFECTS))
def test_every_file_level_defect_is_a_clear_failure(defect, resources, tmp_path):
    make, expected = FILE_DEFECTS[defect]
    result = _materialize(resources, make(tmp_path))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "raw_instructions"
    assert failure.step_failure_data.error.cls_name == "Failure"  # our message, not a traceback
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = failure_chain(result)
    for phrase in expected:
        assert phrase in message, (phrase, message)
    assert not result.asset_materializations_for_node("clean_instructions")  # nothing downstream ran


def test_hub_data_with_drifted_columns_fails_naming_the_columns(resources, tmp_path):
    """The Hub path validates the same schema: an English-only revision is refused, not trained on."""
    import datasets

    repo = tmp_path / "alpaca-gpt4-tr"
    (repo / "data").mkdir(parents=True)
    english_only = [{"instruction": r["instruction"], "input": "", "output": r["output"], "text": "### Instruction"} for r in GOOD[:4]]
    datasets.Dataset.from_list(english_only).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    result = dg.materialize([raw_instructions], resources=resources, raise_on_error=False,
                            run_config={"ops": {"raw_instructions": {"config": {"source": "hub", "dataset_id": str(repo)}}}})
    message = failure_chain(result)
    assert "missing required column(s) ['instruction-turkish', 'input-turkish', 'output-turkish']" in message
    assert "found columns ['input', 'instruction', 'output', 'text']" in message


def test_zero_rows_after_cleaning_fails_and_keeps_the_rejects(resources, tmp_path):
    path = write_jsonl(tmp_path / "hepsi_bos.jsonl", [instruction_row(output="") for _ in range(3)])
    result = _materialize(resources, path)
    assert not result.success
    message = failure_chain(result)
    assert "Zero rows left after cleaning 3 rows" in message and "'empty_field': 3" in message
    rejects = Path(resources["artifacts"].root).resolve() / "clean_instructions" / "rejects.jsonl"
    assert str(rejects) in message
    assert [json.loads(line)["reason"] for line in rejects.read_text().splitlines()] == ["empty_field"] * 3
