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


@pytest.mark.parametrize("dropout", [0.05, 0.1, 0.3])
def test_dropped_input_rebuilt_in_backward_is_bitwise_what_dropout_returned(dropout):
    """The backward rebuilds the dropped input from the input and the mask instead of keeping it
    (one input-sized tensor less per projection through the recompute); it must be exactly what
    the forward's native_dropout returned, or the adapter gradients drift from PEFT's."""
    from tr_gemma.training.fused_lora import _redropped

    x = torch.randn(300, 64).to(torch.bfloat16)
    torch.manual_seed(3)
    dropped, mask = torch.native_dropout(x, dropout, True)
    assert torch.equal(_redropped(x, mask, dropout), dropped)
    assert _redropped(x, None, 0.0) is x


def test_dropout_masks_are_kept_at_one_bit_per_element():
    """Masks live from the forward to the backward of each projection: packed eight to a byte and
    unpacked exactly; widths that are not a multiple of 8 stay as they are."""
    from tr_gemma.training.fused_lora import _pack_mask, _unpack_mask

    mask = torch.rand(37, 1152) > 0.05
    packed = _pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.shape == (37, 144)
    assert torch.equal(_unpack_mask(packed, 1152), mask)
    odd = torch.rand(5, 12) > 0.5
    assert _pack_mask(odd) is odd and _unpack_mask(odd, 12) is odd
    assert _pack_mask(None) is None


def test_input_gradient_by_row_blocks_equals_one_block(monkeypatch):
    """LoRA's masked share of the input gradient is added in row blocks (memory); the result must
    not depend on the block size."""
    from tr_gemma.training import fused_lora

    weight = _nf4_weight()
    lora_a = (torch.randn(8, 64) * 0.1).to(torch.bfloat16).requires_grad_()
    lora_b = (torch.randn(48, 8) * 0.1).to(torch.bfloat16).requires_grad_()
    x = torch.randn(3, 50, 64).to(torch.bfloat16).requires_grad_()
    grad_out = torch.randn(3, 50, 48).to(torch.bfloat16)
    grads = []
    for rows in (10_000, 7):
        monkeypatch.setattr(fused_lora, "ROWS_PER_BLOCK", rows)
        torch.manual_seed(5)
        fused_lora.lora_nf4(x, weight, weight.quant_state, lora_a, lora_b, 2.0, 0.2).backward(grad_out)
        grads.append([t.grad.clone() for t in (x, lora_a, lora_b)])
        for t in (x, lora_a, lora_b):
            t.grad = None
    for one, blocks in zip(*grads):
        assert torch.equal(one, blocks)


@pytest.mark.parametrize("compact", [False, True])
def test_compact_masks_change_memory_not_results(compact):
    """`compact_dropout_masks` keeps the masks packed; outputs and gradients stay the same."""
    weight = _nf4_weight()
    lora_a = (torch.randn(8, 64) * 0.1).to(torch.bfloat16).requires_grad_()
    lora_b = (torch.randn(48, 8) * 0.1).to(torch.bfloat16).requires_grad_()
    x = torch.randn(4, 64).to(torch.bfloat16).requires_grad_()
    results = []
    for packed in (False, compact):
        torch.manual_seed(9)
        out = lora_nf4(x, weight, weight.quant_state, lora_a, lora_b, 2.0, 0.25, packed)
        out.sum().backward()
        results.append([out.detach().clone()] + [t.grad.clone() for t in (x, lora_a, lora_b)])
        for t in (x, lora_a, lora_b):
            t.grad = None
    for plain, other in zip(*results):
        assert torch.equal(plain, other)
