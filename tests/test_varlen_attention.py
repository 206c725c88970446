"""The packed-row boundaries the varlen attention kernel gets (the kernel itself runs on CUDA:
its loss and gradients against SDPA are checked by tests/gpu/test_train_parity.py)."""

import pytest
import torch

from tr_gemma.training.recipe import load_recipe
from tr_gemma.training import varlen_attention
from tr_gemma.training.varlen_attention import NAME, sequence_boundaries


def test_documents_start_where_positions_restart_and_at_every_row():
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0], [3, 4, 0, 1, 2, 3]])  # row 2 continues a document
    cu, longest = sequence_boundaries(position_ids, batch=2, length=6, device="cpu")
    assert cu.tolist() == [0, 3, 5, 6, 8, 12]
    assert cu.dtype == torch.int32 and longest == 4


def test_rows_without_position_ids_are_one_document_each():
    cu, longest = sequence_boundaries(None, batch=3, length=4, device="cpu")
    assert cu.tolist() == [0, 4, 8, 12] and longest == 4


def test_the_recipe_accepts_the_varlen_kernel_and_refuses_unknown_ones():
    assert load_recipe("4b", {"training": {"attn_implementation": NAME}}).training.attn_implementation == NAME
    with pytest.raises(ValueError, match="attn_implementation"):
        load_recipe("4b", {"training": {"attn_implementation": "flash_attention_9"}})


def test_boundaries_are_read_once_per_micro_batch_not_once_per_layer(monkeypatch):
    """Reading the boundaries syncs the GPU; every layer gets the same position_ids tensor."""

    calls = []
    real = varlen_attention.sequence_boundaries
    monkeypatch.setattr(varlen_attention, "sequence_boundaries", lambda *a: calls.append(a) or real(*a))
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 0]])
    first = varlen_attention._boundaries_once({"position_ids": position_ids}, 1, 6, "cpu")
    for _layer in range(5):
        assert varlen_attention._boundaries_once({"position_ids": position_ids}, 1, 6, "cpu") == first
    assert len(calls) == 1 and first[0].tolist() == [0, 3, 5, 6]

    position_ids[0, 2] = 0  # changed in place: read again
    assert varlen_attention._boundaries_once({"position_ids": position_ids}, 1, 6, "cpu")[0].tolist() == [0, 2, 3, 5, 6]
    next_batch = torch.tensor([[0, 1, 2, 3, 4, 5]])
    assert varlen_attention._boundaries_once({"position_ids": next_batch}, 1, 6, "cpu")[0].tolist() == [0, 6]
    assert len(calls) == 3


def test_attach_finds_the_boundaries_once_per_forward_and_hands_them_to_every_attention_call():
    """A decoder layer compiled whole cannot read position ids on the host; the boundaries come
    from a pre-hook on the text model, found once for all layers."""
    import torch
    from transformers import Gemma3ForCausalLM

    from tests.tiny_gemma import tiny_text_config

    model = Gemma3ForCausalLM(tiny_text_config(vocab_size=512)).eval()
    assert varlen_attention.attach(model) == 1
    seen = []
    for layer in model.model.layers:
        layer.self_attn.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(kwargs[varlen_attention.BOUNDARIES]), with_kwargs=True)
    position_ids = torch.cat([torch.arange(20), torch.arange(28)])[None]  # two packed documents
    with torch.no_grad():
        model(input_ids=torch.randint(3, 512, (1, 48)), position_ids=position_ids, use_cache=False)
    assert len(seen) == 2 and seen[0] is seen[1]  # one tuple, computed before the first layer
    cu, longest = seen[0]
    assert cu.tolist() == [0, 20, 48] and longest == 28
