"""No GPU, or too little free GPU memory: a clear preflight error before any weights load.

The qlora_adapter step checks the GPU before it launches the trainer process (the only place
weights load); the trainer process checks CUDA and bf16 again before loading the model.
"""

import dagster as dg
import pytest

from assets.qlora_adapter import qlora_adapter
from resources.gpu import GpuInfo, GpuResource
from tests.reliability.conftest import failure_chain


@pytest.mark.parametrize(
    "gpu,visible,expected",
    [
        (GpuResource(device="cuda"), [], ["device 'cuda' requested but no NVIDIA GPU is visible", "Set device to 'auto' or 'cpu'"]),
        (GpuResource(device="auto"), [GpuInfo(0, "Tesla T4", 15360, 100)],
         ["QLoRA of Gemma 3 1b needs about", "Tesla T4", "0.1 GiB free", "Lower per_device_train_batch_size or max_length"]),
    ],
    ids=["no_gpu", "too_little_gpu_memory"],
)
def test_gpu_preflight_fails_before_the_trainer_starts(resources, trainer_launches, monkeypatch, gpu, visible, expected):
    monkeypatch.setattr(GpuResource, "gpus", lambda self: visible)
    result = dg.materialize([qlora_adapter], resources={**resources, "gpu": gpu}, partition_key="1b", raise_on_error=False)
    assert not result.success
    assert trainer_launches == []  # no process started, so no weights loaded
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = failure_chain(result)
    for phrase in expected:
        assert phrase in message, (phrase, message)


def test_trainer_process_refuses_a_missing_gpu_or_bf16_before_loading_weights(tmp_path, tiny_model_dir, chat_parquet, monkeypatch):
    import torch

    from tests.reliability.conftest import tiny_job
    from tr_gemma.training import sft

    monkeypatch.setattr(sft, "load_quantized_model", lambda *a, **k: pytest.fail("weights loaded"))
    job = tiny_job(tmp_path, tiny_model_dir, chat_parquet)
    job.device = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(sft.TrainingPreflightError, match="device 'cuda' requested but no CUDA GPU is visible"):
        sft.prepare_training(job, lambda m: None, lambda line: None)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a V100 or T4
    with pytest.raises(sft.TrainingPreflightError, match="no bf16 support; Gemma 3 cannot train in fp16"):
        sft.prepare_training(job, lambda m: None, lambda line: None)
