"""The fused RMSNorm/GeGLU kernels (torch.compile) give the loss and LoRA gradients of the plain
Gemma 3 modules, on a tiny NF4 + LoRA model with gradient checkpointing, as the trainer runs it."""

import pytest
import torch

from tests.tiny_gemma import tiny_text_config
from tests.tiny_qlora import (assert_generation_keeps_transformers_path, assert_same_training, loss_and_grads,
                               qlora_model, save_tiny_checkpoint)
from tr_gemma.training.fused_elementwise import fuse_norms_and_activations


def test_fused_norm_and_geglu_match_the_plain_modules(tmp_path):
    save_tiny_checkpoint(tmp_path)
    plain = loss_and_grads(qlora_model(tmp_path))
    fused_model = qlora_model(tmp_path)
    # 2 layers x (4 layer norms + q/k norms) + the final norm; 2 MLPs
    assert fuse_norms_and_activations(fused_model) == (13, 2)
    assert_same_training(plain, loss_and_grads(fused_model))


def test_fused_geglu_refuses_another_activation(tmp_path):
    from transformers import Gemma3ForCausalLM

    model = Gemma3ForCausalLM(tiny_text_config(vocab_size=512, hidden_activation="gelu"))
    with pytest.raises(ValueError, match="hidden_activation"):
        fuse_norms_and_activations(model)


def test_fused_norm_backward_survives_saved_tensors_that_come_back_contiguous():
    """Activation offloading copies saved tensors to host memory and back as contiguous tensors.
    Gemma 3 applies q_norm/k_norm to a transposed view; a compiled kernel that saved that view
    asserts on its strides in backward (seen on an H100 with offloading)."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    def pack(tensor):  # what an offloading hook hands back: same values, contiguous
        return torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor)

    plain, fused = Gemma3RMSNorm(16), Gemma3RMSNorm(16)
    fuse_norms_and_activations(fused)
    grads = []
    for norm in (plain, fused):
        x = torch.randn(1, 24, 3, 16, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = norm(x.transpose(1, 2))  # (batch, heads, seq, dim) view, as in Gemma3Attention
        out.pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-4)


def test_fused_qk_norm_and_rotary_embedding_match_the_plain_attention(tmp_path):
    from tr_gemma.training.fused_rope import fuse_qk_norm_rope

    save_tiny_checkpoint(tmp_path)
    plain = loss_and_grads(qlora_model(tmp_path))
    fused_model = qlora_model(tmp_path)
    assert fuse_qk_norm_rope(fused_model) == 2
    assert_same_training(plain, loss_and_grads(fused_model))


def test_fused_rope_leaves_generation_with_a_kv_cache_to_transformers():
    from tr_gemma.training.fused_rope import fuse_qk_norm_rope

    assert_generation_keeps_transformers_path(fuse_qk_norm_rope, rerouted=2, tolerance=2e-2)


def test_every_kernel_lever_is_a_recipe_setting_and_reroutes_the_model(tmp_path):
    """The trainer applies its GPU kernel levers from one table (tr_gemma.training.sft.KERNEL_LEVERS):
    each names a recipe field, and applying it reroutes the layers of a tiny NF4 + LoRA model."""
    import re

    from tr_gemma.training.recipe import Training
    from tr_gemma.training.sft import KERNEL_LEVERS

    assert set(KERNEL_LEVERS) == {"fused_norm_activation", "fused_rope", "fused_lora", "compact_dropout_masks",
                                  "dropout_in_lora_kernels", "kernel_dropout_bitmask", "keep_projection_outputs",
                                  "compiled_layers", "cuda_graph_layers"} <= set(Training.model_fields)
    save_tiny_checkpoint(tmp_path)
    model = qlora_model(tmp_path)
    training = Training()
    counts = {name: [int(n) for n in re.findall(r"(?<![A-Za-z])\d+", apply(model, training))]  # not the 4 of "NF4"
              for name, (_, apply, _) in KERNEL_LEVERS.items()}
    # 13 norms and 2 MLPs; 2 attention layers; 14 adapted projections (2 layers x 7), the same 14
    # with compact masks, the same 14 drawing dropout in their kernels and storing it as bits; 2
    # decoder layers keeping outputs, the same 2 compiled, the same 2 graphed
    assert counts == {"fused_norm_activation": [13, 2], "fused_rope": [2], "fused_lora": [14],
                      "compact_dropout_masks": [14], "dropout_in_lora_kernels": [14],
                      "kernel_dropout_bitmask": [14], "keep_projection_outputs": [2], "compiled_layers": [2],
                      "cuda_graph_layers": [2]}
