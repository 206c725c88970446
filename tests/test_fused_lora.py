"""The fused NF4 + LoRA autograd function gives PEFT's outputs and gradients: one projection
against the same maths written with plain autograd ops (same dropout mask), and a tiny NF4 Gemma 3
with gradient checkpointing, as the trainer runs it, against PEFT's own forward."""

import pytest
import torch

from tests.tiny_qlora import assert_same_training, loss_and_grads, qlora_model, save_tiny_checkpoint
from tr_gemma.training.fused_lora import fuse_lora, lora_nf4


def _nf4_weight(out_features=48, in_features=64):
    import bitsandbytes as bnb

    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(in_features, out_features, bias=False, compute_dtype=torch.bfloat16,
                              quant_type="nf4", compress_statistics=True)
    layer.load_state_dict({"weight": torch.randn(out_features, in_features) * 0.1}, strict=False)
    return layer.to("cpu").weight  # Params4bit, quantized with double quantisation


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_one_projection_matches_the_plain_autograd_maths(dropout):
    from bitsandbytes import functional as bnbf

    weight = _nf4_weight()
    assert weight.quant_state.nested  # double quant, as the recipes use
    dense = bnbf.dequantize_4bit(weight.data, weight.quant_state).to(torch.bfloat16)
    rank, scaling = 8, 2.0
    lora_a = (torch.randn(rank, 64) * 0.1).to(torch.bfloat16).requires_grad_()
    lora_b = (torch.randn(48, rank) * 0.1).to(torch.bfloat16).requires_grad_()
    x = torch.randn(2, 10, 64).to(torch.bfloat16).requires_grad_()
    grad_out = torch.randn(2, 10, 48).to(torch.bfloat16)

    torch.manual_seed(7)
    fused = lora_nf4(x, weight, weight.quant_state, lora_a, lora_b, scaling, dropout)
    fused.backward(grad_out)
    fused_grads = [t.grad.clone() for t in (x, lora_a, lora_b)]
    for t in (x, lora_a, lora_b):
        t.grad = None

    torch.manual_seed(7)  # the same RNG call, so the same dropout mask
    dropped = torch.native_dropout(x.reshape(-1, 64), dropout, True)[0].view_as(x) if dropout else x
    plain = x @ dense.t() + scaling * (dropped @ lora_a.t()) @ lora_b.t()
    plain.backward(grad_out)

    torch.testing.assert_close(fused, plain, rtol=2e-2, atol=2e-2)
    for name, got, want in zip(("x", "A", "B"), fused_grads, (x.grad, lora_a.grad, lora_b.grad)):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2, msg=name)


def test_adapter_gradients_come_back_in_the_parameter_dtype():
    weight = _nf4_weight()
    lora_a = torch.zeros(4, 64, dtype=torch.float32, requires_grad=True)
    lora_b = torch.zeros(48, 4, dtype=torch.float32, requires_grad=True)
    x = torch.randn(5, 64, dtype=torch.bfloat16, requires_grad=True)
    lora_nf4(x, weight, weight.quant_state, lora_a, lora_b, 2.0, 0.0).sum().backward()
    assert lora_a.grad.dtype == lora_b.grad.dtype == torch.float32
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape


def test_the_fused_model_trains_like_peft(tmp_path):
    save_tiny_checkpoint(tmp_path)
    peft = loss_and_grads(qlora_model(tmp_path))
    fused_model = qlora_model(tmp_path)
    assert fuse_lora(fused_model) == 14  # 2 layers x 7 projections
    assert_same_training(peft, loss_and_grads(fused_model))


def test_a_disabled_adapter_falls_back_to_the_base_model(tmp_path):
    save_tiny_checkpoint(tmp_path)
    model = qlora_model(tmp_path)  # train mode, dropout 0: eval mode would repack the CPU weights
    fuse_lora(model)
    ids = torch.randint(3, 512, (1, 16))
    with torch.no_grad():
        with_adapter = model(input_ids=ids).logits
        with model.disable_adapter():
            without = model(input_ids=ids).logits
        base = model.get_base_model()
        for module in base.modules():  # strip the adapters by hand: the base model's own output
            if hasattr(module, "_peft_forward"):
                module.forward = module.base_layer.forward
        bare = base(input_ids=ids).logits
    torch.testing.assert_close(without, bare)
    assert not torch.allclose(with_adapter, without)
