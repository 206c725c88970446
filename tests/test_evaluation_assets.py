"""tr_mmlu_scores and promoted_adapter as Dagster runs them (tiny model, CPU, Pipes child process)."""

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.base_model import base_model
from assets.evaluation import promoted_adapter, tr_mmlu_questions, tr_mmlu_scores
from assets.qlora_adapter import qlora_adapter
from tests.tiny_gemma import save_tiny_text_model


def _checks(result):
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, gemma_tokenizer_dir):
    """Data, a tiny base model and a 2-step adapter for partition 270m, in one artifact folder."""
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions
    from resources import build_resources

    root = tmp_path_factory.mktemp("eval")
    resources = build_resources(artifacts_root=str(root / "artifacts"))
    tiny = save_tiny_text_model(root / "tiny", gemma_tokenizer_dir)
    assert dg.materialize([raw_instructions, clean_instructions, gemma_chat_dataset, tr_mmlu_questions],
                          resources=resources).success
    assert dg.materialize(
        [base_model, qlora_adapter], resources=resources, partition_key="270m",
        run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(tiny)}},
                            "qlora_adapter": {"config": {"cpu_max_steps": 2, "max_length": 256}}}},
    ).success
    return resources, root / "artifacts"


def _score(resources, margin, mode="blocking"):
    return dg.materialize(
        [tr_mmlu_scores, promoted_adapter], resources=resources, partition_key="270m", raise_on_error=False,
        run_config={"ops": {"tr_mmlu_scores": {"config": {
            "limit": 12, "batch_size": "8", "gate_margin": margin, "gate_mode": mode, "load_in_4bit": False}}}},
    )


def test_scores_gate_and_promotion(trained):
    resources, artifacts = trained
    result = _score(resources, margin=1.0)
    assert result.success
    meta = result.asset_materializations_for_node("tr_mmlu_scores")[0].metadata
    assert 0 <= meta["base_accuracy"].value <= 1 and 0 <= meta["fine_tuned_accuracy"].value <= 1
    assert meta["delta"].value == pytest.approx(meta["fine_tuned_accuracy"].value - meta["base_accuracy"].value)
    assert meta["questions"].value == 12 and meta["bos_tokens_per_request"].value == 1
    assert meta["lm_eval_version"].value == "0.4.13" and len(meta["task_hash"].value) == 16
    assert "| all |" in meta["per_section"].value and meta["chart"].value.startswith("![TR-MMLU")
    audit = [json.loads(l) for l in Path(meta["per_question_log"].value).read_text().splitlines()]
    assert len(audit) == 24 and {"prompt", "choice_loglikelihoods", "chosen", "correct_answer"} <= set(audit[0])
    assert audit[0]["prompt"].startswith("Soru: ") and audit[0]["prompt"].endswith("\nCevap:")
    assert _checks(result)["fine_tuned_not_worse"].passed
    promoted = result.asset_materializations_for_node("promoted_adapter")[0].metadata
    assert promoted["promoted"].value is True
    entry = json.loads(Path(promoted["registry_entry"].value).read_text())
    assert entry["adapter"].endswith("qlora_adapter/270m/adapter")


def test_failed_blocking_gate_stops_promotion(trained):
    resources, artifacts = trained
    registry = artifacts / "registry" / "270m.json"
    before = registry.read_text() if registry.exists() else None
    result = _score(resources, margin=-1.0)  # demands an impossible +100 points
    assert not result.success
    assert _checks(result)["fine_tuned_not_worse"].passed is False
    assert not result.asset_materializations_for_node("promoted_adapter")
    assert (registry.read_text() if registry.exists() else None) == before


def test_failed_warning_gate_runs_on_without_promoting(trained):
    resources, _ = trained
    result = _score(resources, margin=-1.0, mode="warning")
    check = _checks(result)["fine_tuned_not_worse"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert result.asset_materializations_for_node("promoted_adapter")[0].metadata["promoted"].value is False
