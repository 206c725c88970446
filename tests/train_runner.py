"""Runs one training job in a child process so tests can SIGKILL it mid-run.

    python -m tests.train_runner JOB.json    (JOB: model_dir, data_path, output_dir, overrides, delay_s)
"""

import json
import sys
import time
from pathlib import Path

from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, train


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    job = TrainingJob(
        recipe=load_recipe("270m", spec["overrides"]),
        model_dir=Path(spec["model_dir"]),
        data_path=Path(spec["data_path"]),
        output_dir=Path(spec["output_dir"]),
        device="cpu",
    )

    def emit(metrics: dict) -> None:
        print("METRICS", json.dumps(metrics, default=float), flush=True)
        time.sleep(spec.get("delay_s", 0))  # widens the window in which a test can kill the run

    train(job, emit, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
