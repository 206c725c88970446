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


def test_steps_the_pool_lets_through_together_still_take_the_gpu_in_turn(resources, trainer_launches, monkeypatch):
    """On SQLite, Dagster's pool claim is not atomic: two runs claiming together may both get the
    one slot (CI saw two trainers side by side). Here nothing queues the two steps (in-process
    runs have no pool), so only the device lock can keep their trainers apart."""
    import threading
    import time

    from assets.qlora_adapter import qlora_adapter
    from resources.gpu import GpuResource

    trainers = []

    class Finished:
        def get_results(self):
            return [dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="loss_is_finite", passed=True)])]

    def train(self, context, module, extras):
        started = time.monotonic()
        time.sleep(1.0)
        trainers.append((started, time.monotonic()))
        return Finished()

    monkeypatch.setattr(GpuResource, "run_module", train)
    run_config = {"ops": {"qlora_adapter": {"config": {"cpu_max_steps": 1}}}}
    successes, logs = [], []

    def materialize():  # each thread its own instance, used and closed there (SQLite objects stay in their thread)
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize([qlora_adapter], resources=resources, partition_key="1b", run_config=run_config,
                                    instance=instance, raise_on_error=False)
            successes.append(result.success)
            logs.extend(e.user_message for e in instance.all_logs(result.run_id))

    threads = [threading.Thread(target=materialize) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert successes == [True, True]
    (first_start, first_end), (second_start, second_end) = sorted(trainers)
    assert second_start >= first_end, f"trainers overlapped: {sorted(trainers)}"
    assert any(m.startswith("Waiting for cpu: in use by run ") and "qlora_adapter[1b]" in m for m in logs), logs


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
