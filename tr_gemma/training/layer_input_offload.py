"""Activation offloading of the decoder-layer inputs only (`offload_scope: layer_inputs`).

With gradient checkpointing, what backward needs of a decoder layer is its input (tokens x hidden,
bf16); everything inside is recomputed. trl's offloading context moves every saved tensor of at
least 1 KiB that is not a parameter to pinned host memory and back, and the outer saved-tensor
hook it installs also sees tensors other than the layer inputs, model state among them that stays
on the GPU anyway, so moving it frees nothing. How many: 86 copies per micro-step against 6 layer
inputs on the GPU test's six-layer model while compiled layers traced the checkpoint into their
graph (its saved tensors included every layer's NF4 state and the rotary tables; there this scope
gave +12.7% at 4B), 14 against 6 with the checkpoint outside the graph, where it gives
nothing (-7% and -9% at 4B on an H100, two runs; docs/benchmarks.md). Kept as a lever, off in
every recipe.

Here only the decoder-layer inputs go (through trl's own pack/unpack: streams, pinned buffers);
everything else stays where it is. `count` narrows it to the inputs of that many layers, spread
evenly from layer 0: each layer kept costs its input in GPU memory and saves its round trip.
"""

from __future__ import annotations


def _same(tensor):
    return tensor


def outside_offloading():
    """Saved-tensor hooks that leave every tensor where it is, shadowing whatever offloading hooks
    are open outside. trl's context stays open through backward (its training_step wraps both), so
    a recompute run there, or a CUDA graph captured there, needs this."""
    import torch

    return torch.autograd.graph.saved_tensors_hooks(_same, _same)


def offloaded_layer_indices(layers: int, count: int) -> frozenset[int]:
    """`count` of the `layers` decoder layers, spread evenly from layer 0 (whose input backward
    needs last, leaving its copy back the most time)."""
    if not 0 <= count <= layers:
        raise ValueError(f"cannot offload {count} of {layers} decoder layers")
    return frozenset(j * layers // count for j in range(count))


def is_layer_input(tensor, hidden_size: int) -> bool:
    """A decoder layer's input: (batch, tokens, hidden). LoRA A matrices (r, hidden) and the
    rotary tables (batch, tokens, head_dim) are not."""
    return tensor.dim() == 3 and tensor.shape[-1] == hidden_size


def layer_input_offload_context(model, hidden_size: int, layers: int, count: int | None = None):
    """trl's offloading context for `model`, moving only the inputs of `count` decoder layers
    (all of them when None).

    Layer inputs are counted in the order the forward saves them, which is layer order, from the
    start of each forward; anything saved after the last layer (the final norm's input, which
    backward needs first) stays on the GPU.
    """
    from trl.models.activation_offloading import OffloadActivations

    context = OffloadActivations(use_pin_memory=True, use_streams=True)
    context.update_model_params(model)
    chosen = offloaded_layer_indices(layers, layers if count is None else count)
    offload = context.pack_hook
    seen = 0

    def keep(tensor):
        # trl's bookkeeping for a tensor it leaves on the GPU, including a new forward's reset
        if context.is_first_forward_call:
            if context.tracker:
                raise ValueError("Backward pass should have cleared tracker of all tensors")
            context.is_first_forward_call = False
            context.is_first_backward_call = True
            context.storage_to_tensor_id = {}
            context._storage_key_by_tensor_id = {}
        context.tensor_id += 1
        context.tracker[context.tensor_id] = (tensor, False, None, None, None)
        return context.tensor_id

    def pack(tensor):
        nonlocal seen
        if context.is_first_forward_call:
            seen = 0
        if not is_layer_input(tensor, hidden_size):
            return keep(tensor)
        seen += 1
        return offload(tensor) if seen - 1 in chosen else keep(tensor)

    context.pack_hook = pack  # read by saved_tensors_hooks.__enter__
    return context


def offload_layer_inputs(trainer, count: int | None) -> str:
    """Replace the trainer's offloading context with one that moves layer inputs only."""
    text = trainer.model.config.get_text_config()
    layers = text.num_hidden_layers
    if count is not None and count > layers:  # the recipe cannot know the depth: checked here, by name
        raise ValueError(f"training.offloaded_layers is {count}, but this model has {layers} decoder layers")
    trainer.maybe_activation_offload_context = layer_input_offload_context(
        trainer.model, text.hidden_size, layers, count)
    moved = layers if count is None else count
    return (f"Activation offloading: the inputs of {moved} of {layers} decoder layers go to host memory; "
            "every other saved tensor stays on the GPU.")
