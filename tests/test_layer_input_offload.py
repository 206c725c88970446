"""Which saved tensors `offload_scope: layer_inputs` sends to host memory (the CUDA run itself is
tests/gpu/test_layer_input_offload.py)."""

import pytest
import torch

from tr_gemma.training.layer_input_offload import is_layer_input, offload_layer_inputs, offloaded_layer_indices


def test_offloaded_layers_spread_evenly_from_layer_zero():
    assert offloaded_layer_indices(34, 34) == frozenset(range(34))
    assert offloaded_layer_indices(34, 8) == {0, 4, 8, 12, 17, 21, 25, 29}
    assert offloaded_layer_indices(34, 1) == {0}  # the input backward needs last
    assert offloaded_layer_indices(34, 0) == frozenset()


def test_more_offloaded_layers_than_the_model_has_is_refused():
    with pytest.raises(ValueError, match="cannot offload 35 of 34 decoder layers"):
        offloaded_layer_indices(34, 35)


def test_the_trainer_refuses_more_offloaded_layers_than_the_model_has_naming_the_setting():
    """The recipe cannot know the model's depth; the trainer checks it before building the context."""
    import types

    from transformers import Gemma3ForCausalLM

    from tests.tiny_gemma import tiny_text_config

    trainer = types.SimpleNamespace(model=Gemma3ForCausalLM(tiny_text_config()))
    layers = trainer.model.config.num_hidden_layers
    with pytest.raises(ValueError, match=f"training.offloaded_layers is {layers + 1}, but this model has {layers}"):
        offload_layer_inputs(trainer, layers + 1)
    assert not hasattr(trainer, "maybe_activation_offload_context")


def test_only_hidden_states_count_as_layer_inputs():
    hidden = 2560
    assert is_layer_input(torch.empty(1, 8192, hidden), hidden)
    assert not is_layer_input(torch.empty(32, hidden), hidden)  # a LoRA A matrix
    assert not is_layer_input(torch.empty(1, 8192, 256), hidden)  # a rotary table (head_dim 256)
    assert not is_layer_input(torch.empty(hidden), hidden)  # a norm weight


def test_memory_plan_keeps_the_inputs_of_the_layers_not_offloaded():
    from tr_gemma.training.memory import estimate_training_memory
    from tr_gemma.training.recipe import load_recipe

    config = {"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34, "vocab_size": 262_208,
              "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256}

    def plan(**kw):
        return estimate_training_memory(config, 2, 4096, 32, attention="packed_varlen", **kw).activations

    layer_input = 2 * 4096 * 2560 * 2
    assert plan(offloading=True, offloaded_layers=34) == plan(offloading=True)  # every input: as trl's
    assert plan(offloading=True, offloaded_layers=0) == plan(offloading=False)
    assert plan(offloading=False) - plan(offloading=True, offloaded_layers=8) == 6 * layer_input  # 2 in flight
    narrowed = load_recipe("4b", {"training": {"offloaded_layers": 8, "offload_scope": "layer_inputs"}})
    assert narrowed.training.offloaded_layers == 8
