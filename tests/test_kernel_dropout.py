"""`dropout_in_lora_kernels`: the LoRA kernels draw torch's own dropout masks (kernel_dropout).

The kernels need a CUDA GPU; their masks against torch's, and their results against torch's
computation with those masks, are in tests/gpu/test_kernel_dropout.py, the whole-model parity
against PEFT in tests/gpu/test_train_parity.py. Here: where the lever must step aside (CPU
tensors, inputs torch's vector kernel would not take), the stream bookkeeping it copies from torch,
the recipe checks and the memory plan."""

import pytest
import torch

from tests.tiny_qlora import loss_and_grads, qlora_model, save_tiny_checkpoint
from tr_gemma.training import kernel_dropout
from tr_gemma.training.fused_lora import dropout_in_lora_kernels, fuse_lora
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingPreflightError, _check_kernel_dropout_recipe


def _fused_model(folder, dropout: float, in_kernels: bool):
    model = qlora_model(folder)
    for module in model.modules():
        if hasattr(module, "lora_dropout"):
            module.lora_dropout["default"] = torch.nn.Dropout(dropout)
    assert fuse_lora(model) == 14
    if in_kernels:
        assert dropout_in_lora_kernels(model) == 14
    return model


def test_where_the_kernels_cannot_run_training_keeps_torch_dropout_bitwise(tmp_path):
    """On the CPU (and any input torch's vector dropout kernel would not take) the fused LoRA draws
    torch's dropout as before: the lever changes nothing, not even the random stream."""
    save_tiny_checkpoint(tmp_path)
    torch.manual_seed(5)
    ref_loss, ref_grads = loss_and_grads(_fused_model(tmp_path, 0.1, in_kernels=False))
    torch.manual_seed(5)
    loss, grads = loss_and_grads(_fused_model(tmp_path, 0.1, in_kernels=True))
    assert loss == ref_loss
    assert grads.keys() == ref_grads.keys() and len(grads) == 28
    for name, grad in grads.items():
        assert torch.equal(grad, ref_grads[name]), name


def test_cpu_and_float32_inputs_are_not_taken():
    assert not kernel_dropout.usable(torch.randn(64, 256, dtype=torch.bfloat16))
    assert not kernel_dropout.usable(torch.randn(64, 256))


def test_the_launch_layout_is_torch_dropouts(monkeypatch):
    """torch's dropout_cuda: 256-thread blocks, at most as many as stay resident (an H100: 132 SMs x
    8 blocks), and the generator moves by 4 per draw each thread makes (VEC 8: two draws a loop)."""
    kernel_dropout._resident_threads.cache_clear()
    monkeypatch.setattr(kernel_dropout, "_resident_threads", lambda index: 132 * 2048)
    assert kernel_dropout.torch_layout(8192 * 21504, 0) == (270_336, 652)  # 163 loops of 4
    assert kernel_dropout.torch_layout(8192 * 5376, 0) == (270_336, 164)
    assert kernel_dropout.torch_layout(512, 0) == (512, 4)  # 2 blocks: numel / 256
    assert kernel_dropout.torch_layout(24 * 1152, 0) == (27_648, 4)


def test_the_stream_position_is_split_as_curand_reads_it():
    """curand_init(seed, thread, offset): key = seed's halves, counter = offset / 4 (64 bits)."""
    mask = kernel_dropout.KernelMask(seed=(1 << 40) + 5, offset=(1 << 34) + 8, threads=270_336, keep=0.95,
                                     scale=1 / 0.95)
    args = mask.args()
    assert (args["seed_lo"], args["seed_hi"]) == (5, 256)
    assert (args["ctr_lo"], args["ctr_hi"]) == (2, 1)
    assert args["sweep"] == 270_336 * 8


@pytest.mark.parametrize("override,message", [
    ({"training": {"fused_lora": False}}, "dropout_in_lora_kernels needs training.fused_lora"),
    ({"training": {"compiled_layers": True}}, "dropout_in_lora_kernels cannot run with training.compiled_layers"),
    ({"training": {"cuda_graph_layers": True}}, "dropout_in_lora_kernels cannot run with training.cuda_graph_layers"),
    ({"lora": {"r": 24}}, "needs lora.r a power of two of at least 16"),
    ({"lora": {"r": 8}}, "needs lora.r a power of two of at least 16"),
])
def test_recipes_the_kernels_cannot_serve_are_refused_by_name(override, message):
    lever = {"dropout_in_lora_kernels": True}
    recipe = load_recipe("27b", {**override, "training": {**lever, **override.get("training", {})}})
    with pytest.raises(TrainingPreflightError, match=message):
        _check_kernel_dropout_recipe(recipe)
    _check_kernel_dropout_recipe(load_recipe("27b", {"training": lever}))


def test_memory_plan_keeps_no_mask_with_the_lever():
    from tr_gemma.training.memory import estimate_training_memory

    config = {"hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62, "vocab_size": 262_208,
              "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128}

    def plan(**kw):
        return estimate_training_memory(config, 2, 4096, 32, attention="packed_varlen", **kw).activations

    # one byte a projection-input element (the mask) of the recomputed layer: q/k/v/gate/up, o, down
    assert plan() - plan(kernel_dropout=True) == 2 * 4096 * (5 * 5376 + 4096 + 21504)
    assert plan(lora_dropout=False) == plan(lora_dropout=False, kernel_dropout=True)
    # with the bitmask lever: one bit an element, kept through the recomputed layer's backward
    assert plan(kernel_dropout=True, kernel_bits=True) - plan(kernel_dropout=True) == \
        2 * 4096 * (5 * 5376 + 4096 + 21504) / 8


def test_the_bitmask_without_kernel_dropout_is_refused_when_the_recipe_loads():
    from tr_gemma.errors import PipelineInputError

    with pytest.raises(PipelineInputError, match="kernel_dropout_bitmask .* needs training.dropout_in_lora_kernels"):
        load_recipe("27b", {"training": {"dropout_in_lora_kernels": False, "kernel_dropout_bitmask": True}})
