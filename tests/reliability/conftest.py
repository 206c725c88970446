"""Helpers of the reliability suite: training runs in a child process that tests can kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A token value that must never show up in a log, a file, metadata or an error message.
PLANTED_TOKEN = "hf_plantedSENTINELtoken8f3a1c2e9b7d"
# 4 CPU steps of 64 tokens, a checkpoint after every step.
TINY_RUN = {"training": {"save_steps": 1, "seed": 7}, "cpu": {"max_steps": 4, "max_length": 64, "per_device_train_batch_size": 1}}


def tiny_job(output_dir: Path, model_dir: Path, data_path: Path, **training):
    """An in-process TrainingJob on the tiny run's budget, with `training` overrides."""
    from tr_gemma.training.recipe import load_recipe
    from tr_gemma.training.sft import TrainingJob

    overrides = {"training": {**TINY_RUN["training"], **training}, "cpu": TINY_RUN["cpu"]}
    return TrainingJob(recipe=load_recipe("270m", overrides), model_dir=model_dir, data_path=data_path,
                       output_dir=output_dir, device="cpu")


def training_spec(folder: Path, name: str, model_dir: Path, data_path: Path, **options) -> Path:
    """A job file for tests.train_runner on the tiny run's budget."""
    spec = {"model_dir": str(model_dir), "data_path": str(data_path), "output_dir": str(folder / name),
            "overrides": TINY_RUN, **options}
    path = folder / f"{name}-{len(list(folder.glob(f'{name}-*.json')))}.json"
    path.write_text(json.dumps(spec))
    return path


def run_training(spec_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.train_runner", str(spec_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def run_training_until_paused(spec_path: Path, env: dict | None = None) -> str:
    """Start a run that pauses itself (pause_after_step / pause_in_save), SIGKILL it there.

    Returns the run's output up to the kill.
    """
    spec = json.loads(spec_path.read_text())
    marker = Path(spec["output_dir"]) / "paused"
    log = spec_path.with_suffix(".log")
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "tests.train_runner", str(spec_path)], cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert process.poll() is None, "training ended before it could be killed:\n" + log.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    marker.unlink()
    return log.read_text()


@pytest.fixture
def trainer_launches(resources, tiny_model_dir, chat_parquet, monkeypatch):
    """Upstream outputs in place (base_model manifest, chat data) and a record of trainer launches."""
    import dagster as dg

    from resources.gpu import GpuResource

    store = resources["artifacts"]
    manifest = store.folder(dg.AssetKey("base_model"), "1b") / "checkpoint.json"
    manifest.write_text(json.dumps({"path": str(tiny_model_dir), "revision": "local"}))
    shutil.copy(chat_parquet, store.folder(dg.AssetKey("gemma_chat_dataset")) / "data.parquet")
    launches = []
    monkeypatch.setattr(GpuResource, "run_module", lambda self, context, module, extras: launches.append(module))
    return launches


@pytest.fixture
def fast_datasets(monkeypatch):
    """In-process training without `datasets` pickling the tokenizer (see tests.train_runner)."""
    from tests.train_runner import fast_in_memory_datasets

    fast_in_memory_datasets(monkeypatch.setattr)


def files_containing(root: Path, needle: str) -> list[str]:
    """Every file under `root` whose bytes contain `needle` (binary files included)."""
    return [str(p) for p in Path(root).rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def failure_chain(result) -> str:
    """Every message of the first failed step's error and its causes (what the UI shows)."""
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error, messages = event.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)
