"""The model card comes from recorded metadata (nothing invented); Hub publishing fails fast offline."""

import time

import pytest

from tr_gemma.handoff.hub_publish import HubPublishError, check_publish_settings, publish_folder
from tr_gemma.handoff.model_card import NOT_RECORDED, build_model_card


def _record(metadata, timestamp=1_790_000_000.0, run_id="run-0000", config=None):
    return {"metadata": metadata, "run_id": run_id, "timestamp": timestamp, "config": config or {}}


def planted_records():
    """Upstream metadata with distinctive values that no default or constant could produce."""
    recipe = {"quantization": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                               "bnb_4bit_compute_dtype": "bfloat16"},
              "lora": {"r": 24, "lora_alpha": 48, "lora_dropout": 0.07, "target_modules": ["q_proj", "v_proj"]},
              "training": {"learning_rate": 0.000137, "max_length": 3072, "max_steps": 777, "optim": "paged_adamw_8bit",
                           "per_device_train_batch_size": 3, "gradient_accumulation_steps": 5, "bf16": True},
              "cpu": {"max_steps": 11, "max_length": 256}}
    return {
        "base_model": _record({"source": "hub:google/gemma-3-1b-pt", "revision": "abc123def4567890",
                               "parameters": 999_888_777, "layers": 26, "checksum": "sha256:feedbeef"}, run_id="base-run"),
        "raw_instructions": _record({"source": "hub", "revision": "cb14a8dplanted", "num_rows": 52_002,
                                     "licence": "PLANTED LICENCE NOTE: non-commercial."},
                                    config={"dataset_id": "someone/planted-turkish-set"}),
        "clean_instructions": _record({"num_rows": 51_234}),
        "gemma_chat_dataset": _record({"train_rows": 50_210, "eval_rows": 1_024, "total_tokens": 12_345_678}),
        "token_efficiency": _record({"verdict_on_claim": "PLANTED VERDICT 2.0123", "fertility_tr_gemma3": 2.0123,
                                     "fertility_tr_llama3": 2.3456}),
        "qlora_adapter": _record({"device": "cuda", "steps": 4321, "train_loss": 1.2345, "eval_loss_before": 2.5432,
                                  "eval_loss_after": 1.3579, "tokens_per_second": 15_432.1, "peak_memory_gib": 12.75,
                                  "trainable_parameters": 13_044_736, "recipe": recipe}, timestamp=1_790_000_100.0,
                                 run_id="train-run-1"),
        "tr_mmlu_questions": _record({"source": "tr_mmlu", "revision": "mmlu-rev-42", "test_questions": 6200}),
        "tr_mmlu_scores": _record({"base_accuracy": 0.3141, "fine_tuned_accuracy": 0.3587, "delta": 0.0446,
                                   "base_accuracy_ci95": "[0.302, 0.326]", "fine_tuned_accuracy_ci95": "[0.346, 0.371]",
                                   "questions": 6200, "num_fewshot": 0, "lm_eval_version": "0.4.13",
                                   "task_hash": "planted0hash", "per_section": "| section | n |\n|---|---|\n| Tarih | 100 |"},
                                  timestamp=1_790_000_200.0),
        "promoted_adapter": _record({"promoted": True}, timestamp=1_790_000_300.0),
        "merged_model": _record({"dtype": "bfloat16", "stop_token_ids": [1, 106], "logits_relative_error": 0.00987,
                                 "top1_agreement": 1.0, "adapter_digest": "sha256:merged0digest",
                                 "merged_into": "bf16 base weights (not the 4-bit training weights)"},
                                timestamp=1_790_000_400.0),
    }


def test_card_values_come_from_the_recorded_metadata():
    card = build_model_card(planted_records(), "1b", "adapter")
    for planted in ("google/gemma-3-1b-pt", "abc123def4567890", "999,888,777", "sha256:feedbeef",
                    "someone/planted-turkish-set", "cb14a8dplanted", "52,002", "51,234", "50,210 / 1,024", "12,345,678",
                    "PLANTED LICENCE NOTE: non-commercial.", "r=24, alpha=48, dropout=0.07 on q_proj, v_proj",
                    "0.000137", "3 x gradient accumulation 5", "3,072 tokens", "/ 777", "4,321", "1.234", "2.543 / 1.358",
                    "15,432", "12.75", "13,044,736", "0.314 (31.4%)", "0.359 (35.9%)", "[0.346, 0.371]", "+0.045",
                    "6,200 questions", "TR-MMLU (`alibayram/turkish_mmlu`), revision `mmlu-rev-42`", "planted0hash",
                    "| Tarih | 100 |", "PLANTED VERDICT 2.0123", "| gemma3 | 2.012 |", "| llama3 | 2.346 |",
                    "0.00987", "sha256:merged0digest", "**promoted**", "`train-ru`"):
        assert planted in card, planted
    assert card.startswith("---\nlicense: gemma\n") and "library_name: peft" in card
    assert "base_model: google/gemma-3-1b-pt" in card and "- someone/planted-turkish-set" in card
    assert "https://ai.google.dev/gemma/terms" in card and "non-commercial purposes only" in card
    assert "has no materialization" not in card and "Stale" not in card
    assert "CPU smoke budget" not in card  # trained on cuda: the recipe's GPU values are shown

    merged = build_model_card(planted_records(), "1b", "merged")
    assert "library_name: transformers" in merged and "ids 1, 106" in merged and "AutoModelForCausalLM" in merged


def test_cpu_runs_show_the_cpu_budget_that_actually_ran():
    records = planted_records()
    records["qlora_adapter"]["metadata"]["device"] = "cpu"
    card = build_model_card(records, "270m")
    assert "/ 11" in card and "256 tokens" in card and "CPU smoke budget" in card
    assert "/ 777" not in card


def test_missing_upstream_metadata_is_reported_not_invented():
    records = planted_records()
    for asset in ("tr_mmlu_scores", "token_efficiency", "promoted_adapter"):
        records[asset] = None
    del records["qlora_adapter"]["metadata"]["train_loss"]
    card = build_model_card(records, "1b")
    for asset in ("tr_mmlu_scores", "token_efficiency", "promoted_adapter"):
        assert f"{NOT_RECORDED}: `{asset}` has no materialization for partition `1b` yet" in card, asset
        assert f"| `{asset}` | {NOT_RECORDED} | {NOT_RECORDED} |" in card
    assert f"| final training loss | {NOT_RECORDED} |" in card
    assert "0.314" not in card and "PLANTED VERDICT" not in card and "**promoted**" not in card

    nothing = build_model_card({asset: None for asset in records}, "4b")
    assert nothing.count(NOT_RECORDED) > 10 and "non-commercial" in nothing  # licence terms are policy, kept


def test_results_older_than_the_adapter_are_flagged_stale():
    records = planted_records()
    records["tr_mmlu_scores"]["timestamp"] = records["qlora_adapter"]["timestamp"] - 60
    card = build_model_card(records, "1b")
    assert "**Stale:** The TR-MMLU scores predate the current adapter" in card


def test_not_promoted_is_said_plainly():
    records = planted_records()
    records["promoted_adapter"]["metadata"]["promoted"] = False
    assert "**not promoted**" in build_model_card(records, "1b")


def test_publish_settings_are_checked_before_any_network(tmp_path):
    with pytest.raises(HubPublishError, match="hub_repo_id as '<user or organisation>/<name>'"):
        check_publish_settings("", "hf_x")
    with pytest.raises(HubPublishError, match="needs a Hub token with write access: set HF_TOKEN"):
        check_publish_settings("someone/tr-gemma", None)


def test_publishing_offline_fails_in_seconds_naming_the_repo(tmp_path):
    (tmp_path / "README.md").write_text("card")
    started = time.perf_counter()
    with pytest.raises(HubPublishError) as error:
        publish_folder(tmp_path, "someone/tr-gemma-270m-adapter", "hf_not_a_real_token", timeout_s=5,
                       what_to_do="Or set push_to_hub: false.")
    assert time.perf_counter() - started < 15
    message = str(error.value)
    assert "'someone/tr-gemma-270m-adapter'" in message and "unreachable" in message and "push_to_hub: false" in message
    assert "hf_not_a_real_token" not in message and error.value.retryable is False
