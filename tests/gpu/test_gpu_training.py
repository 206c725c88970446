"""GPU-only checks of the trainer (bitsandbytes CUDA kernels, bf16, paged optimizer).

Run on the GPU machine with `bash scripts/gpu_tests.sh`; CI has no GPU and deselects the `gpu`
marker (pytest reports them as deselected). Results of the last GPU run are committed under
benchmarks/results/gpu_tests.log.
"""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.tiny_gemma import save_tiny_text_model
from tr_gemma.chat_format import to_messages
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, load_quantized_model, train

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device: run it on the GPU machine")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, gemma_tokenizer_dir):
    return save_tiny_text_model(tmp_path_factory.mktemp("tiny") / "model", gemma_tokenizer_dir)


@pytest.fixture(scope="module")
def chat_parquet(tmp_path_factory):
    rows = [{"row_id": i, "split": "eval" if i % 7 == 0 else "train", "text": "",
             "messages": to_messages("", f"{i} artı {i} kaçtır?", "", f"{2 * i} eder.")} for i in range(42)]
    path = tmp_path_factory.mktemp("chat") / "data.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_base_weights_are_nf4_on_cuda_with_bf16_compute(cuda, tiny_model_dir, tmp_path):
    import bitsandbytes as bnb

    job = TrainingJob(load_recipe("270m"), tiny_model_dir, tmp_path, tmp_path)
    model = load_quantized_model(job, "cuda")
    linear = model.model.layers[0].self_attn.q_proj
    assert isinstance(linear, bnb.nn.Linear4bit) and linear.weight.device.type == "cuda"
    assert linear.weight.quant_state.quant_type == "nf4" and linear.compute_dtype == torch.bfloat16
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16


def _job(tiny_model_dir, chat_parquet, out, steps):
    recipe = load_recipe("270m", {"training": {"max_steps": steps, "max_length": 256, "save_steps": 2,
                                               "gradient_accumulation_steps": 1, "seed": 3}})
    return TrainingJob(recipe, tiny_model_dir, chat_parquet, out, device="cuda")


def test_qlora_steps_on_cuda_are_finite_and_reduce_eval_loss(cuda, tiny_model_dir, chat_parquet, tmp_path):
    logs = []
    report = train(_job(tiny_model_dir, chat_parquet, tmp_path / "run", 8), logs.append, print)
    losses = [entry["loss"] for entry in logs if "loss" in entry]
    assert len(losses) == 8 and all(math.isfinite(loss) for loss in losses)
    assert report.device.startswith("NVIDIA") and report.peak_memory_gib > 0
    assert report.eval_loss_after < report.eval_loss_before


def test_paged_8bit_optimizer_resume_matches_an_uninterrupted_run(cuda, tiny_model_dir, chat_parquet, tmp_path):
    """3 steps, a checkpoint, then the rest in a new trainer == all steps in one trainer."""
    import shutil

    from safetensors.torch import load_file

    import tr_gemma.training.sft as sft

    whole = train(_job(tiny_model_dir, chat_parquet, tmp_path / "whole", 6), lambda m: None, print)
    keep = sft.shutil.rmtree
    sft.shutil.rmtree = lambda *a, **k: None  # keep checkpoints of the partial run
    try:
        train(_job(tiny_model_dir, chat_parquet, tmp_path / "part", 6), lambda m: None, print)
    finally:
        sft.shutil.rmtree = keep
    resumed_dir = tmp_path / "resumed" / "checkpoints"
    resumed_dir.mkdir(parents=True)
    for name in ("checkpoint-4", "job.json", "eval_before.json"):
        source = tmp_path / "part" / "checkpoints" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, resumed_dir / name)
    resumed = train(_job(tiny_model_dir, chat_parquet, tmp_path / "resumed", 6), lambda m: None, print)
    assert resumed.resumed_from == "checkpoint-4"
    a = load_file(Path(whole.adapter_dir) / "adapter_model.safetensors")
    b = load_file(Path(resumed.adapter_dir) / "adapter_model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
    assert [h["loss"] for h in whole.loss_history] == [h["loss"] for h in resumed.loss_history]


@pytest.mark.parametrize("double_quant", [True, False])
def test_fused_lora_dequantises_exactly_as_bitsandbytes_public_api(cuda, double_quant):
    """`fused_lora` calls bitsandbytes' CUDA dequantisation kernels without its op dispatch (host
    time on a host-bound step); the weight it gets back must be bitwise bitsandbytes' own."""
    import bitsandbytes.functional as bnbf

    from tr_gemma.training import fused_lora

    torch.manual_seed(0)
    weight = torch.randn(1024, 1152, dtype=torch.bfloat16, device=cuda)
    packed, state = bnbf.quantize_4bit(weight, quant_type="nf4", compress_statistics=double_quant)
    direct = fused_lora._dequantize(packed, state, torch.bfloat16)
    public = bnbf.dequantize_4bit(packed, state).to(torch.bfloat16)
    assert fused_lora._CUDA_DEQUANTIZERS  # the direct path ran, not the public fallback
    assert torch.equal(direct, public)
    assert (direct.float() - weight.float()).abs().mean() < 0.1  # and it is the weight, NF4-rounded


@pytest.mark.parametrize("dropout", [0.05, 0.1, 0.3])
def test_dropped_input_rebuilt_in_backward_is_bitwise_cuda_dropout(dropout):
    """CUDA's fused dropout rounds x * scale once in float: the rebuilt dropped input must match it bit for bit."""
    from tr_gemma.training.fused_lora import _redropped

    x = torch.randn(4096, 1152, device="cuda").to(torch.bfloat16)
    torch.manual_seed(3)
    dropped, mask = torch.native_dropout(x, dropout, True)
    assert torch.equal(_redropped(x, mask, dropout), dropped)
