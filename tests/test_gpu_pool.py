"""Two training runs asking for the GPU at once: the `gpu` pool (limit 1) and the device lock make the second wait."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.tiny_gemma import save_tiny_text_model

ROOT = Path(__file__).resolve().parents[1]


def test_two_training_runs_share_the_gpu_one_after_the_other(tmp_path, gemma_tokenizer_dir):
    from assets.base_model import base_model
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions
    from resources import build_resources

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    resources = build_resources(artifacts_root=str(tmp_path / "artifacts"))
    assert dg.materialize([raw_instructions, clean_instructions, gemma_chat_dataset], resources=resources).success
    tiny = save_tiny_text_model(tmp_path / "tiny", gemma_tokenizer_dir)
    for size in ("270m", "1b"):
        assert dg.materialize([base_model], resources=resources, partition_key=size,
                              run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(tiny)}}}}).success
    config = tmp_path / "train.yaml"
    config.write_text("ops:\n  qlora_adapter:\n    config:\n      cpu_max_steps: 2\n      max_length: 128\n")

    # Create the instance's sqlite storage once: two CLI processes creating it together race.
    dg.DagsterInstance.from_config(str(home)).get_runs(limit=1)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    dagster = str(Path(sys.executable).with_name("dagster"))
    runs = [subprocess.Popen([dagster, "asset", "materialize", "-m", "pipelines.definitions", "--select", "qlora_adapter",
                              "--partition", size, "-c", str(config)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for size in ("270m", "1b")]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), "\n".join(o[-2000:] for o in outputs)

    # The GPU is held from "Holding" to "Releasing"; the trainer's results arrive inside that
    # window. The steps themselves may start together: on SQLite the pool's slot claim is not
    # atomic (two claims in the same milliseconds both win), the device lock is what serialises.
    instance = dg.DagsterInstance.from_config(str(home))
    windows = []
    for record in instance.get_run_records():
        logs = [e for e in instance.all_logs(record.dagster_run.run_id) if e.step_key == "qlora_adapter"]
        held = next(e.timestamp for e in logs if e.user_message.startswith("Holding cpu"))
        released = next(e.timestamp for e in logs if e.user_message.startswith("Releasing cpu"))
        trained = next(e.timestamp for e in logs if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION")
        assert held <= trained <= released
        windows.append((held, released))
    (first_start, first_end), (second_start, second_end) = sorted(windows)
    assert second_start >= first_end, f"training overlapped: {sorted(windows)}"
    # Both steps went through the `gpu` pool of limit 1 (the pool only logs when it blocks a step,
    # which on SQLite depends on the race above, so its slots are asserted instead of its log lines).
    from assets.qlora_adapter import qlora_adapter

    assert qlora_adapter.op.pool == "gpu"
    gpu_pool = instance.event_log_storage.get_concurrency_info("gpu")
    assert gpu_pool.slot_count == 1
    assert not gpu_pool.claimed_slots  # both steps gave their slot back
