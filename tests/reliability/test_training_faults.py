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
    tiny_job,
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
    lora_b = [name for name in reference_adapter if "lora_B" in name]  # zero at init: trained if not zero
    assert lora_b and all(reference_adapter[name].abs().sum() > 0 for name in lora_b)  # gradients flowed (GC on)
    for name in reference_adapter:
        assert torch.equal(reference_adapter[name], resumed_adapter[name]), name
    report = lambda folder: json.loads((folder / "report.json").read_text())  # noqa: E731
    assert report(tmp_path / "uninterrupted")["loss_history"] == report(killed)["loss_history"]
    assert report(killed)["resumed_from"] == "checkpoint-2" and report(killed)["steps"] == 4
    assert math.isfinite(report(killed)["eval_loss_after"])


def test_disk_full_while_writing_a_checkpoint_fails_clearly_and_keeps_the_last_good_one(
    tmp_path, tiny_model_dir, chat_parquet, fast_datasets, monkeypatch
):
    import errno

    from safetensors.torch import load_file

    from tr_gemma.errors import DiskFullError
    from tr_gemma.training.resume import prepare_checkpoint_dir
    from tr_gemma.training.sft import train

    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "checkpoint-2" in str(f):  # the disk fills up half-way through the second checkpoint
            with open(f, "wb") as handle:
                handle.write(b"\0" * 64)
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    job = tiny_job(tmp_path / "out", tiny_model_dir, chat_parquet)
    with pytest.raises(DiskFullError) as error:
        train(job, lambda metrics: None, lambda line: None)
    message = str(error.value)
    assert "No space left on device while writing checkpoint-2" in message and "GiB free" in message
    assert "earlier checkpoints are intact" in message and "resumes from the last complete one" in message
    assert not (job.output_dir / "adapter").exists()

    checkpoints = job.output_dir / "checkpoints"
    assert is_complete(checkpoints / "checkpoint-1")
    assert load_file(checkpoints / "checkpoint-1" / "adapter_model.safetensors")  # readable
    torch.load(checkpoints / "checkpoint-1" / "optimizer.pt", weights_only=True)
    resume, notes = prepare_checkpoint_dir(checkpoints, job.fingerprint())
    assert resume.name == "checkpoint-1" and any("incomplete checkpoint-2" in n for n in notes)


@pytest.fixture(scope="module")
def nan_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny model with a NaN final-norm weight: every forward pass gives NaN logits."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("nan") / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights = load_file(folder / "model.safetensors")
    weights["model.norm.weight"] = torch.full_like(weights["model.norm.weight"], float("nan"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_nan_loss_stops_training_at_its_step(tmp_path, nan_model_dir, chat_parquet, fast_datasets):
    from tr_gemma.training.callbacks import NonFiniteLossError
    from tr_gemma.training.sft import train

    job = tiny_job(tmp_path / "out", nan_model_dir, chat_parquet)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at step 1; training stopped"):
        train(job, lambda metrics: None, lambda line: None)
    assert not (job.output_dir / "adapter").exists() and not (job.output_dir / "report.json").exists()


def test_diverging_loss_stops_the_real_training_loop_at_its_step(
    tmp_path, tiny_model_dir, chat_parquet, fast_datasets, monkeypatch
):
    """A tiny random model cannot really diverge (its tiny embeddings bound the logits, so its loss
    stays near ln(vocab) even at learning rate 1), so the loss is made to grow 10x per step."""
    from trl import SFTTrainer

    from tr_gemma.training.callbacks import NonFiniteLossError
    from tr_gemma.training.sft import train

    real_loss = SFTTrainer.compute_loss

    def growing_loss(self, *args, **kwargs):
        result = real_loss(self, *args, **kwargs)
        factor = 10.0 ** self.state.global_step  # x1 in step 1, x10 in step 2, ...
        return (result[0] * factor, *result[1:]) if isinstance(result, tuple) else result * factor

    monkeypatch.setattr(SFTTrainer, "compute_loss", growing_loss)
    job = tiny_job(tmp_path / "out", tiny_model_dir, chat_parquet, save_steps=100)
    with pytest.raises(NonFiniteLossError, match=r"loss diverged at step 4: .*lower the learning rate"):
        train(job, lambda metrics: None, lambda line: None)
    assert not (job.output_dir / "adapter").exists()
