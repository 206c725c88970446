"""Runs one training job in a child process so tests can SIGKILL it at a chosen point.

    python -m tests.train_runner JOB.json

JOB keys: model_dir, data_path, output_dir, overrides, and optionally
  pause_after_step: N   after step N is logged (before its checkpoint), write `<output_dir>/paused`
                        and wait there to be killed
  pause_in_save: N      the same while checkpoint-N is half written: adapter, optimizer and
                        scheduler saved, rng state and trainer_state.json not yet
  torch_load_log: PATH  append every torch.load call (file, weights_only) to PATH as JSON lines
"""

import json
import sys
import time
from pathlib import Path

from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, train


def fast_in_memory_datasets(set_attribute=setattr) -> None:
    """Make trl's dataset preparation cheap for tiny test runs; the prepared rows are identical.

    trl's map calls carry the 33 MB Gemma tokenizer: `datasets` 5 pickles it to fingerprint each
    call and, with num_proc=1, into a one-worker process pool (~10 s per map on 2 cores). The
    data sets here live in memory, so there is no cache to name: random fingerprints and the
    main process do the same work. `set_attribute` may be pytest's monkeypatch.setattr.
    """
    import datasets.arrow_dataset
    import datasets.fingerprint

    def random_fingerprint(fingerprint, transform, transform_args):
        return datasets.fingerprint.generate_random_fingerprint()

    for module in (datasets.fingerprint, datasets.arrow_dataset):
        set_attribute(module, "update_fingerprint", random_fingerprint)
    original_map = datasets.arrow_dataset.Dataset.map

    def map_in_process(self, *args, **kwargs):
        if kwargs.get("num_proc") == 1:
            kwargs["num_proc"] = None
        return original_map(self, *args, **kwargs)

    set_attribute(datasets.arrow_dataset.Dataset, "map", map_in_process)


def _pause(output_dir: Path, where: str) -> None:
    (output_dir / "paused").write_text(where)
    time.sleep(600)  # the test kills the process here


def _pause_in_save(output_dir: Path, step: int) -> None:
    import transformers

    original = transformers.Trainer._save_rng_state

    def save_rng_state(self, checkpoint_dir):
        if self.state.global_step == step:
            _pause(output_dir, f"saving checkpoint-{step}")
        return original(self, checkpoint_dir)

    transformers.Trainer._save_rng_state = save_rng_state


def _log_torch_loads(log_path: Path) -> None:
    import torch

    original = torch.load

    def load(f, *args, **kwargs):
        with log_path.open("a") as handle:
            handle.write(json.dumps({"file": str(f), "weights_only": kwargs.get("weights_only")}) + "\n")
        return original(f, *args, **kwargs)

    torch.load = load


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    output_dir = Path(spec["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    fast_in_memory_datasets()
    if "pause_in_save" in spec:
        _pause_in_save(output_dir, spec["pause_in_save"])
    if "torch_load_log" in spec:
        _log_torch_loads(Path(spec["torch_load_log"]))
    job = TrainingJob(
        recipe=load_recipe("270m", spec["overrides"]),
        model_dir=Path(spec["model_dir"]),
        data_path=Path(spec["data_path"]),
        output_dir=output_dir,
        device="cpu",
    )

    def emit(metrics: dict) -> None:
        print("METRICS", json.dumps(metrics, default=float), flush=True)
        if "loss" in metrics and metrics.get("step") == spec.get("pause_after_step"):
            _pause(output_dir, f"after step {metrics['step']}")

    train(job, emit, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
