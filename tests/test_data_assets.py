"""The three data assets materialized together with dg.materialize, as a run would."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.chat_dataset import gemma_chat_dataset
from assets.instructions import clean_instructions, raw_instructions
from tests.conftest import DATA_DIR, instruction_row, read_jsonl, write_jsonl

DATA_ASSETS = [raw_instructions, clean_instructions, gemma_chat_dataset]


def checks_of(result) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_embedded_data_flows_raw_to_clean_to_chat(resources, gemma_tokenizer_dir):
    result = dg.materialize(DATA_ASSETS, resources=resources)
    assert result.success
    assert all(checks_of(result).values()) and len(checks_of(result)) == 8

    raw = result.output_for_node("raw_instructions")
    clean = result.output_for_node("clean_instructions")
    chat = result.output_for_node("gemma_chat_dataset")
    assert len(chat) == len(clean) <= len(raw)
    assert set(chat["split"]) == {"train", "eval"}
    assert chat["text"].str.startswith("<bos><start_of_turn>user\n").all()
    assert chat["text"].str.endswith("<end_of_turn>\n").all()
    first = chat.iloc[0]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]

    chat_meta = result.asset_materializations_for_node("gemma_chat_dataset")[0].metadata
    assert chat_meta["train_rows"].value + chat_meta["eval_rows"].value == len(chat)
    assert chat_meta["examples"].value.count("```text") == 3
    assert Path(chat_meta["path"].value).is_file()


def test_bad_rows_are_rejected_counted_and_saved(resources, tmp_path, gemma_tokenizer_dir):
    rows = [{k: v for k, v in r.items() if k != "defect"} for r in read_jsonl(DATA_DIR / "bad_instructions.jsonl")]
    good = [instruction_row(instruction=f"Soru {i}?", output=f"Cevap {i}.") for i in range(40)]
    path = write_jsonl(tmp_path / "karisik.jsonl", good + rows)
    result = dg.materialize(
        DATA_ASSETS,
        resources=resources,
        run_config={"ops": {"raw_instructions": {"config": {"source": "path", "path": str(path)}}}},
    )
    assert result.success
    meta = result.asset_materializations_for_node("clean_instructions")[0].metadata
    assert meta["num_rows"].value == 41
    assert meta["rejected_empty_field"].value == 3
    assert meta["rejected_duplicate"].value == 2
    assert meta["rejected_mojibake"].value == 1 and meta["rejected_ai_identity"].value == 1
    rejects = [json.loads(line) for line in Path(meta["rejects_path"].value).read_text().splitlines()]
    assert len(rejects) == 7 and all(r["reason"] and r["detail"] for r in rejects)


def test_failed_quality_gate_blocks_the_chat_asset(resources, tmp_path):
    rows = [instruction_row(output="Aynı cevap.") for _ in range(3)] + [instruction_row(output="Başka.")]
    path = write_jsonl(tmp_path / "kopyalar.jsonl", rows)
    result = dg.materialize(
        DATA_ASSETS,
        resources=resources,
        run_config={"ops": {"raw_instructions": {"config": {"source": "path", "path": str(path)}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert checks_of(result)["duplicate_rate_under_limit"] is False
    assert checks_of(result)["drop_rate_under_limit"] is False
    assert not result.asset_materializations_for_node("gemma_chat_dataset")


def test_bad_file_fails_and_leaves_the_previous_output_intact(resources, tmp_path):
    good = dg.materialize([raw_instructions], resources=resources)
    stored = Path(good.asset_materializations_for_node("raw_instructions")[0].metadata["path"].value)
    before = stored.read_bytes()

    broken = tmp_path / "kesik.jsonl"
    broken.write_text(json.dumps(instruction_row())[:50] + "\n", encoding="utf-8")
    result = dg.materialize(
        [raw_instructions],
        resources=resources,
        run_config={"ops": {"raw_instructions": {"config": {"source": "path", "path": str(broken)}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert stored.read_bytes() == before
    assert not [p for p in stored.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(pd.read_parquet(stored)) == len(good.output_for_node("raw_instructions"))
