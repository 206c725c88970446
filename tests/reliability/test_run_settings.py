"""Settings that decide how a run behaves when something goes wrong, checked where they live."""

from pathlib import Path

import dagster as dg
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_work_queues_on_one_pool_slot():
    """A second GPU run waits for the first instead of running out of memory next to it (the live
    proof with two concurrent CLI runs is tests/test_gpu_pool.py)."""
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for asset in ("qlora_adapter", "tr_mmlu_scores"):
        assert graph.get(dg.AssetKey(asset)).pools == {"gpu"}, asset
    instance = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance["concurrency"]["pools"]["default_limit"] == 1


def test_a_crashed_run_is_relaunched_but_a_failed_asset_is_not():
    retries = yaml.safe_load((ROOT / "dagster.yaml").read_text())["run_retries"]
    assert retries["enabled"] and retries["max_retries"] >= 1
    assert retries["retry_on_asset_or_op_failure"] is False  # op retries and run retries never multiply


def test_trainer_arguments_keep_failures_visible_and_runs_resumable(tmp_path, tiny_model_dir, chat_parquet):
    from tests.reliability.conftest import tiny_job
    from tr_gemma.training.sft import sft_config

    job = tiny_job(tmp_path, tiny_model_dir, chat_parquet)
    args = sft_config(job, job.recipe, tmp_path / "checkpoints", "cpu")
    assert args.logging_nan_inf_filter is False  # a NaN is logged as NaN, and LossGuard stops the run
    assert args.save_only_model is False  # optimizer, scheduler and RNG state saved: resumable
    assert args.save_total_limit is None  # no rotation deletes the checkpoint a resume needs
    assert args.auto_find_batch_size is False  # the effective batch never changes silently
    assert args.push_to_hub is False and args.hub_token is None  # nothing leaves the machine, no token
    assert args.fp16 is False
    assert job.recipe.training.attn_implementation == "sdpa"  # chosen in the recipe, not a library default
