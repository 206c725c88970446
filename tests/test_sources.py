"""The three sources of raw_instructions: embedded, hub (Hub-layout data set) and path."""

import time

import dagster as dg
import pandas as pd
import pytest

from assets.instructions import raw_instructions
from tests.conftest import instruction_row, step_failure_message, write_jsonl
from tr_gemma.embedded_data import INSTRUCTIONS_SAMPLE
from tr_gemma.errors import SourceUnavailableError
from tr_gemma.hub import describe_hub_error
from tr_gemma.instruction_files import read_instruction_file


def materialize_raw(resources, **config):
    return dg.materialize(
        [raw_instructions],
        resources=resources,
        run_config={"ops": {"raw_instructions": {"config": config}}},
        raise_on_error=False,
    )


def test_embedded_sample_is_large_varied_and_parallel():
    frame = read_instruction_file(INSTRUCTIONS_SAMPLE)
    assert len(frame) >= 300
    for column in ("instruction", "input", "output", "instruction-turkish", "input-turkish", "output-turkish"):
        assert column in frame.columns
    text = " ".join(frame["output-turkish"]) + " ".join(frame["instruction-turkish"])
    assert all(letter in text for letter in "çğıİöşü")
    assert (frame["input-turkish"] != "").sum() >= 30
    assert (frame["system-turkish"] != "").sum() >= 5
    assert frame["instruction-turkish"].is_unique


def test_embedded_source_records_content_hash_as_data_version(resources):
    result = materialize_raw(resources, source="embedded")
    assert result.success
    materialization = result.asset_materializations_for_node("raw_instructions")[0]
    assert materialization.metadata["source"].value == "embedded"
    assert materialization.metadata["revision"].value.startswith("sha256:")
    assert materialization.tags["dagster/data_version"] == materialization.metadata["revision"].value


def test_path_source_reads_a_local_file(resources, tmp_path):
    path = write_jsonl(tmp_path / "benim.jsonl", [instruction_row(output="Evet."), instruction_row(output="Hayır.")])
    result = materialize_raw(resources, source="path", path=str(path))
    assert result.success
    assert result.output_for_node("raw_instructions")["output-turkish"].tolist() == ["Evet.", "Hayır."]


def test_hub_source_loads_a_dataset_saved_in_the_hub_layout(resources, tmp_path):
    """A folder laid out as push_to_hub writes it (data/train-*.parquet), with extra English columns."""
    import datasets

    rows = [instruction_row(instruction=f"Soru {i}", output=f"Cevap {i}") for i in range(4)]
    for row in rows:
        row["text"] = "### Instruction: English pre-formatted text that must never be used"
    repo = tmp_path / "alpaca-gpt4-tr"
    (repo / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    result = materialize_raw(resources, source="hub", dataset_id=str(repo))
    assert result.success
    frame = result.output_for_node("raw_instructions")
    assert frame["instruction-turkish"].tolist() == [f"Soru {i}" for i in range(4)]
    materialization = result.asset_materializations_for_node("raw_instructions")[0]
    assert materialization.metadata["source"].value == "hub"


def test_hub_source_offline_fails_fast_naming_source_reason_and_alternatives(resources, monkeypatch):
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "5")
    started = time.monotonic()
    result = materialize_raw(resources, source="hub")
    elapsed = time.monotonic() - started
    assert not result.success
    message = step_failure_message(result)
    assert "raw_instructions source 'hub' failed" in message
    assert "malhajar/alpaca-gpt4-tr" in message and "a6d4c80" in message
    assert "unreachable" in message or "offline" in message
    assert "'embedded'" in message and "'path'" in message
    print(f"offline hub failure after {elapsed:.1f} s")  # measured, reported in docs; not asserted


def test_hub_resource_switched_offline_refuses_at_once(tmp_path):
    from resources import build_resources
    from resources.huggingface import HuggingFaceHub

    resources = {**build_resources(artifacts_root=str(tmp_path)), "hf_hub": HuggingFaceHub(offline=True)}
    result = materialize_raw(resources, source="hub")
    assert "configured offline" in step_failure_message(result)


def test_gated_and_missing_repos_are_not_retried():
    from huggingface_hub import errors as hub_errors

    class FakeResponse:
        status_code = 401
        headers = {}
        request = None

    gated = hub_errors.GatedRepoError("gated", response=FakeResponse())
    missing = hub_errors.RepositoryNotFoundError("missing", response=FakeResponse())
    described = describe_hub_error(gated, "alibayram/turkish_mmlu", "main", "dataset")
    assert isinstance(described, SourceUnavailableError) and not described.retryable
    assert "gated" in str(described) and "HF_TOKEN" in str(described)
    described = describe_hub_error(missing, "google/gemma-3-4b-itt", "main", "model")
    assert "does not exist" in str(described) and not described.retryable


def test_path_source_without_path_is_a_config_error(resources):
    result = materialize_raw(resources, source="path")
    assert "needs config 'path'" in step_failure_message(result)
