"""`cuda_graph_layers` on the CPU side: what a graph cannot take runs the layer as before, and the
trainer refuses recipes the graphs cannot serve, naming the setting. The graphs themselves need
CUDA: tests/gpu/test_graphed_layers.py (graphed against eager layers over changing micro-batches)
and tests/gpu/test_train_parity.py (against PEFT, dropout masks included)."""

import pytest
import torch

from tests.tiny_qlora import assert_same_training, loss_and_grads, qlora_model, save_tiny_checkpoint
from tr_gemma.training.graphed_layers import MAX_DOCUMENTS, graph_decoder_layers, graph_pool_bytes
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingPreflightError, _check_graph_recipe


def test_calls_a_graph_cannot_take_run_the_layer_as_before(tmp_path):
    """On the CPU (and in evaluation, generation, or without packed boundaries) the wrapped layers
    train exactly as the plain ones: same loss and gradients, no graph captured, no pool held."""
    save_tiny_checkpoint(tmp_path)
    reference = loss_and_grads(qlora_model(tmp_path))
    model = qlora_model(tmp_path)
    assert graph_decoder_layers(model, capacity=1024) == 2
    assert_same_training(reference, loss_and_grads(model))
    layers = [m for m in model.modules() if hasattr(m, "_layer_graphs")]
    assert len(layers) == 2 and all(layer._layer_graphs.forward_graph is None for layer in layers)
    assert graph_pool_bytes() == 0
    with torch.no_grad():  # evaluation: the eager forward too
        model.eval()
        assert torch.isfinite(model(input_ids=torch.randint(3, 512, (1, 16))).logits).all()


@pytest.mark.parametrize("override,setting", [
    ({"attn_implementation": "sdpa"}, "attn_implementation"),
    ({"gradient_checkpointing": False}, "gradient_checkpointing"),
])
def test_recipes_the_graphs_cannot_serve_are_refused_by_name(override, setting):
    recipe = load_recipe("1b", {"training": {"cuda_graph_layers": True, **override}})
    with pytest.raises(TrainingPreflightError, match=f"cuda_graph_layers needs training.{setting}"):
        _check_graph_recipe(recipe)
    _check_graph_recipe(load_recipe("1b", {"training": {"cuda_graph_layers": True}}))  # the 1B recipe: fine


def test_the_recipes_that_graph_their_layers_leave_room_for_their_documents():
    """The graphs' boundary tensor holds MAX_DOCUMENTS packed documents; a micro-batch of the 1B and
    4B recipes (2 x 4096 tokens) holds that many only if documents average 64 tokens or fewer."""
    for size in ("1b", "4b"):
        t = load_recipe(size).training
        assert t.cuda_graph_layers and t.attn_implementation == "packed_varlen" and t.gradient_checkpointing
        assert t.per_device_train_batch_size * t.max_length / MAX_DOCUMENTS == 64
