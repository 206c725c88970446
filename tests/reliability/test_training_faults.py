"""Faults during training: SIGKILL twice, a full disk mid-checkpoint, NaN loss, a diverging run.

Tiny random Gemma 3 (real tokenizer) on the CPU; the kill test runs the trainer in child processes.
"""

import json
import math

import pytest
import torch

from tests.reliability.conftest import (
    PLANTED_TOKEN,
    files_containing,
    run_training,
    run_training_until_paused,
    training_spec,
)
from tr_gemma.training.resume import is_complete


def _adapter(folder):
    from safetensors.torch import load_file

    return load_file(folder / "adapter" / "adapter_model.safetensors")


def test_two_kills_resume_to_the_same_adapter_as_an_uninterrupted_run(tmp_path, tiny_model_dir, chat_parquet):
    env = {"HF_TOKEN": PLANTED_TOKEN}  # a real run has it in its environment: it must not reach a checkpoint
    spec = lambda **options: training_spec(tmp_path, "killed", tiny_model_dir, chat_parquet, **options)  # noqa: E731

    reference = run_training(training_spec(tmp_path, "uninterrupted", tiny_model_dir, chat_parquet))
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]

    killed = tmp_path / "killed"
    checkpoints = killed / "checkpoints"
    # Kill 1: mid-run, step 2 computed but its checkpoint not yet written.
    run_training_until_paused(spec(pause_after_step=2), env)
    assert is_complete(checkpoints / "checkpoint-1") and not (checkpoints / "checkpoint-2").exists()
    assert not (killed / "adapter").exists()  # nothing half-written where the result belongs

    # Kill 2: the resumed run dies while writing checkpoint-3 (weights and optimizer on disk, no state).
    output = run_training_until_paused(spec(pause_in_save=3), env)
    assert "Resuming from checkpoint-1" in output
    assert is_complete(checkpoints / "checkpoint-2")
    half = checkpoints / "checkpoint-3"
    assert (half / "adapter_model.safetensors").is_file() and not (half / "trainer_state.json").exists()
    assert files_containing(checkpoints, PLANTED_TOKEN) == []  # training_args.bin included

    loads = tmp_path / "torch_loads.jsonl"
    done = run_training(spec(torch_load_log=str(loads)), env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "incomplete checkpoint-3 set aside" in done.stdout
    assert "Resuming from checkpoint-2" in done.stdout

    # The incomplete checkpoint was never loaded; what was loaded went through weights_only=True.
    calls = [json.loads(line) for line in loads.read_text().splitlines()]
    assert calls and all(c["weights_only"] is True for c in calls), calls
    assert all("/checkpoint-2/" in c["file"] for c in calls), calls

    reference_adapter, resumed_adapter = _adapter(tmp_path / "uninterrupted"), _adapter(killed)
    assert reference_adapter.keys() == resumed_adapter.keys()
    for name in reference_adapter:
        assert torch.equal(reference_adapter[name], resumed_adapter[name]), name
    report = lambda folder: json.loads((folder / "report.json").read_text())  # noqa: E731
    assert report(tmp_path / "uninterrupted")["loss_history"] == report(killed)["loss_history"]
    assert report(killed)["resumed_from"] == "checkpoint-2" and report(killed)["steps"] == 4
    assert math.isfinite(report(killed)["eval_loss_after"])
