"""The packed-row boundaries the varlen attention kernel gets (the kernel itself runs on CUDA:
its loss and gradients against SDPA are checked by tests/gpu/test_train_parity.py)."""

import pytest
import torch

from tr_gemma.training.recipe import load_recipe
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
    from tr_gemma.training import varlen_attention

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
