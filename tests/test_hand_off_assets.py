"""merged_model, sample_answers and model_card as Dagster runs them (tiny Gemma 3, CPU, Pipes),
reading upstream metadata from the same instance; Hub publishing off by default, fast failure offline."""

import json
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.base_model import base_model
from assets.evaluation import promoted_adapter, tr_mmlu_questions, tr_mmlu_scores
from assets.hand_off import merged_model, model_card, sample_answers
from assets.qlora_adapter import qlora_adapter
from resources.huggingface import HuggingFaceHub
from tests.conftest import step_failure_message
from tests.tiny_gemma import save_tiny_text_model


@pytest.fixture(scope="module")
def handed_off(tmp_path_factory, gemma_tokenizer_dir):
    """Data, a tiny base model, a 2-step adapter, scores and promotion for 270m, then the three
    hand-off assets, all recorded in one instance (token_efficiency is left out on purpose)."""
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions
    from resources import build_resources

    root = tmp_path_factory.mktemp("handoff")
    resources = build_resources(artifacts_root=str(root / "artifacts"))
    instance = dg.DagsterInstance.ephemeral()
    tiny = save_tiny_text_model(root / "tiny", gemma_tokenizer_dir)
    assert dg.materialize([raw_instructions, clean_instructions, gemma_chat_dataset, tr_mmlu_questions],
                          resources=resources, instance=instance).success
    assert dg.materialize(
        [base_model, qlora_adapter, tr_mmlu_scores, promoted_adapter], resources=resources, partition_key="270m",
        instance=instance,
        run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(tiny)}},
                            "qlora_adapter": {"config": {"cpu_max_steps": 2, "max_length": 256}},
                            "tr_mmlu_scores": {"config": {"limit": 8, "batch_size": "8", "gate_margin": 1.0,
                                                          "load_in_4bit": False}}}},
    ).success
    started = time.perf_counter()
    result = dg.materialize(
        [merged_model, sample_answers, model_card], resources=resources, partition_key="270m", instance=instance,
        run_config={"ops": {"sample_answers": {"config": {"max_new_tokens": 4}}}},
    )
    return result, instance, resources, root / "artifacts", time.perf_counter() - started


def _metadata(result, asset):
    return result.asset_materializations_for_node(asset)[0].metadata


def _latest(instance, asset):
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=["270m"]), limit=1).records[0]
    return record.asset_materialization.metadata


def test_merged_model_is_checked_and_ships_stop_tokens(handed_off):
    result, _, _, artifacts, _ = handed_off
    assert result.success
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    check = checks["merged_logits_match_adapter"]
    assert check.passed and check.metadata["logits_relative_error"].value <= check.metadata["tolerance"].value
    meta = _metadata(result, "merged_model")
    folder = Path(meta["path"].value)
    assert folder == artifacts / "merged_model" / "270m" / "model"
    assert meta["stop_token_ids"].value == [1, 106] and meta["dtype"].value == "bfloat16"
    assert "not the 4-bit" in meta["merged_into"].value
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == [1, 106]
    assert not list(folder.glob("*.bin")) and (folder / "model.safetensors").is_file()


def test_sample_answers_side_by_side_in_metadata_and_jsonl(handed_off):
    from tr_gemma.handoff.sample_prompts import SAMPLE_PROMPTS

    result, *_ = handed_off
    meta = _metadata(result, "sample_answers")
    table = meta["side_by_side"].value.splitlines()
    assert isinstance(meta["side_by_side"], dg.MarkdownMetadataValue)
    assert table[0] == "| # | prompt | base model | fine-tuned |" and len(table) == 2 + len(SAMPLE_PROMPTS)
    assert meta["stop_token_ids"].value == [1, 106] and meta["decoding"].value.startswith("greedy")
    rows = [json.loads(line) for line in Path(meta["answers_path"].value).read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [p.id for p in SAMPLE_PROMPTS]
    for row in rows:
        for model in ("base", "fine_tuned"):
            assert row[model]["new_tokens"] <= 4 and row[model]["stop"] in ("<eos>", "<end_of_turn>", "max_new_tokens")


def test_model_card_is_built_from_the_instance_metadata(handed_off):
    result, instance, _, artifacts, _ = handed_off
    meta = _metadata(result, "model_card")
    card = meta["card"].value
    trained, scores = _latest(instance, "qlora_adapter"), _latest(instance, "tr_mmlu_scores")
    base = _latest(instance, "base_model")
    assert f"| final training loss | {trained['train_loss'].value:.4g} |" in card
    assert f"| optimizer steps | {trained['steps'].value:,} |" in card
    assert f"| base | {scores['base_accuracy'].value:.3f} ({scores['base_accuracy'].value:.1%})" in card
    assert f"on {scores['questions'].value:,} questions" in card
    assert base["revision"].value == "local" and "| revision | `local` |" in card
    assert "`token_efficiency` has no materialization for partition `270m` yet" in card
    assert meta["not_recorded"].value == "token_efficiency"
    assert "**promoted**" in card and "ids 1, 106" in card
    assert meta["pushed_to_hub"].value is False

    merged_readme = artifacts / "merged_model" / "270m" / "model" / "README.md"
    adapter_readme = artifacts / "qlora_adapter" / "270m" / "adapter" / "README.md"
    assert merged_readme.read_text(encoding="utf-8") == card
    assert adapter_readme.read_text(encoding="utf-8").startswith("---\nlicense: gemma\n")
    assert "library_name: peft" in adapter_readme.read_text(encoding="utf-8")


def _card_run(handed_off, hub, push_config):
    _, instance, resources, _, _ = handed_off
    started = time.perf_counter()
    result = dg.materialize([model_card], resources={**resources, "hf_hub": hub}, partition_key="270m",
                            instance=instance, raise_on_error=False,
                            run_config={"ops": {"model_card": {"config": push_config}}})
    return result, time.perf_counter() - started


def test_push_to_hub_offline_fails_fast_naming_the_repo(handed_off):
    push = {"push_to_hub": True, "hub_repo_id": "someone/tr-gemma-270m-tr"}
    result, seconds = _card_run(handed_off, HuggingFaceHub(token="hf_not_a_real_token", timeout_s=5), push)
    assert not result.success and seconds < 30
    message = step_failure_message(result)
    assert "'someone/tr-gemma-270m-tr'" in message and "unreachable" in message
    assert "push_to_hub: false" in message and "README.md" in message and "hf_not_a_real_token" not in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_push_to_hub_needs_a_repo_id_and_a_token(handed_off):
    result, _ = _card_run(handed_off, HuggingFaceHub(token="hf_x"), {"push_to_hub": True})
    assert "hub_repo_id as '<user or organisation>/<name>'" in step_failure_message(result)
    result, _ = _card_run(handed_off, HuggingFaceHub(token=None), {"push_to_hub": True, "hub_repo_id": "a/b"})
    assert "set HF_TOKEN" in step_failure_message(result)
    result, _ = _card_run(handed_off, HuggingFaceHub(token="hf_x", offline=True), {"push_to_hub": True, "hub_repo_id": "a/b"})
    assert "configured offline" in step_failure_message(result)
