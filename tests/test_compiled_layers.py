"""Decoder layers compiled whole (`training.compiled_layers`): the same loss and LoRA gradients as the
eager fused path, one compiled graph per kind of layer, and the NF4 + LoRA op that makes the layer
traceable passes PyTorch's custom-op checks (schema, fake shapes, registered backward)."""

import pytest
import torch

from tests.tiny_gemma import tiny_text_config
from tests.tiny_qlora import assert_generation_keeps_transformers_path, loss_and_grads, qlora_model
from tr_gemma.training.compiled_layers import compile_decoder_layers
from tr_gemma.training.fused_elementwise import fuse_norms_and_activations
from tr_gemma.training.fused_lora import fuse_lora, graph_ops
from tr_gemma.training.fused_rope import fuse_qk_norm_rope


def _four_layer_checkpoint(folder):
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    config = tiny_text_config(vocab_size=512, hidden_size=64, intermediate_size=128, head_dim=32,
                              num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=4,
                              layer_types=["sliding_attention", "full_attention"] * 2)
    Gemma3ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def _with_dropout(model, p: float):
    for module in model.modules():
        if hasattr(module, "lora_dropout"):
            for name in module.lora_dropout:
                module.lora_dropout[name] = torch.nn.Dropout(p)
    return model


def test_compiled_layers_train_like_the_eager_fused_path_with_one_graph_per_layer_kind(tmp_path):
    """LoRA dropout on and checkpointing on: the checkpoint's recompute reruns the compiled layer,
    which must draw the masks the forward drew (with the checkpoint traced into the graph it drew
    fresh ones); the eager path draws them in the same order, so the gradients agree."""
    from torch._dynamo.utils import counters

    _four_layer_checkpoint(tmp_path)
    without_dropout = qlora_model(tmp_path)
    fuse_lora(without_dropout)
    eager = _with_dropout(qlora_model(tmp_path), 0.1)
    fuse_lora(eager)
    expected = loss_and_grads(eager)
    # the masks are really drawn (a model left in eval mode would draw none and pass vacuously)
    assert eager.training and expected[0] != pytest.approx(loss_and_grads(without_dropout)[0], rel=1e-4)

    compiled = _with_dropout(qlora_model(tmp_path), 0.1)
    fuse_lora(compiled), fuse_norms_and_activations(compiled), fuse_qk_norm_rope(compiled)
    torch._dynamo.reset()
    counters.clear()
    assert compile_decoder_layers(compiled) == 4
    loss, grads = loss_and_grads(compiled)

    # sliding and global attention layers: two graphs for four layers, the parameters being inputs
    assert counters["stats"]["unique_graphs"] == 2
    assert loss == pytest.approx(expected[0], rel=1e-2)
    assert grads.keys() == expected[1].keys() and len(grads) == 56
    for name, grad in grads.items():
        reference = expected[1][name]
        assert grad.abs().sum() > 0, name
        assert torch.nn.functional.cosine_similarity(grad.flatten(), reference.flatten(), dim=0) > 0.99, name
        assert grad.norm() == pytest.approx(reference.norm().item(), rel=0.05), name


def test_compiled_layers_refuse_peft_4bit_forward(tmp_path):
    """Without fused_lora the layer would reach bitsandbytes' matmul, which dynamo cannot trace."""
    _four_layer_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="needs fused_lora"):
        compile_decoder_layers(qlora_model(tmp_path))


@pytest.mark.parametrize("dropout,compact", [(0.0, False), (0.1, False), (0.1, True)])
def test_nf4_lora_op_passes_pytorch_custom_op_checks(tmp_path, dropout, compact):
    from tr_gemma.training.fused_lora import _quant_parts

    model = fuse_lora_layer(tmp_path)
    weight = model.base_layer.weight
    forward, _ = graph_ops()
    x = torch.randn(2, 5, weight.quant_state.shape[1], dtype=torch.bfloat16, requires_grad=True)
    lora_a, lora_b = model.lora_A["default"].weight, model.lora_B["default"].weight
    args = (x, weight, *_quant_parts(weight.quant_state), weight.quant_state.shape[0], lora_a, lora_b, 2.0, dropout,
            compact)
    if dropout:  # random masks: the checks that run the op twice and compare values cannot apply
        torch.library.opcheck(forward, args,
                              test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    else:
        torch.library.opcheck(forward, args)

def fuse_lora_layer(folder):
    """The first fused q_proj of a tiny NF4 + LoRA model (CPU)."""
    from tests.tiny_qlora import save_tiny_checkpoint

    save_tiny_checkpoint(folder)
    model = qlora_model(folder)
    fuse_lora(model)
    return next(m for n, m in model.named_modules() if n.endswith("q_proj") and hasattr(m, "base_layer"))


def test_compiled_layers_leave_generation_with_a_kv_cache_to_transformers():
    torch._dynamo.reset()
    assert_generation_keeps_transformers_path(compile_decoder_layers, rerouted=2, tolerance=1e-4)
