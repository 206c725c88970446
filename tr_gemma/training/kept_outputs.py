"""A checkpointed recompute without the output projections' GEMMs (the `keep_projection_outputs` lever).

With gradient checkpointing a decoder layer runs its forward twice: once to go on, and again in
backward to rebuild what backward needs. At 27B the step is bound by its GEMMs, not the host
(docs/benchmarks.md: GEMMs 67% of an H100 step, near the card's peak), so the recompute's GEMMs
are the cost. Two of them rebuild nothing that backward needs from inside them: the LoRA adapters
of o_proj and down_proj need their input, their dropout mask and their down-projection, and the
layer needs their outputs (the post-attention and post-feed-forward RMSNorms take them), but the
frozen NF4 weight's product itself is never differentiated. So this checkpoint keeps those two
outputs from the first forward, beside the layer input, and the recompute takes them instead of
running the two GEMMs: a quarter of the recompute's matmul work at every Gemma 3 size (o_proj and
down_proj hold 28% of a 27B layer's weights).

What is kept goes where the layer input goes: with activation offloading, trl's hooks move all
three to pinned host memory and back (3 x tokens x hidden in bf16 per layer instead of 1). trl's
offloading context stays open through backward, so the recompute runs under identity hooks of its
own: its tensors live only until the layer's backward ends, as in torch's checkpoint. trl fetches
them back only when backward asks, with the GPU waiting; `prefetch_kept_outputs` moves them here
instead, fetched a layer ahead (`prefetched_offload`).
Dropout: the recompute replays under the forward's RNG state (as torch's checkpoint does), and the
two projections still draw their masks there, so every mask is the forward's. The kept outputs
are bitwise what the recompute would have computed, so loss and gradients are unchanged.

Which outputs are kept is the recipe's `training.kept_projections`. o_proj and down_proj (the
default) cost two more tokens x hidden tensors a layer. gate_proj and up_proj also feed only what
the recompute rebuilds from their outputs (the GeGLU); keeping them spares the recompute's two
largest GEMMs for 2 x tokens x intermediate more bf16 a layer, on the host with offloading.

Eager layers only: compiled layers (`compiled_layers`) and CUDA graphs (`cuda_graph_layers`) run
the fused projections as library ops or captured kernels that cannot take a kept output.
"""

from __future__ import annotations

import functools
import types

from tr_gemma.training.layer_input_offload import outside_offloading
from tr_gemma.training.prefetched_offload import HostStash

KEPT_PROJECTIONS = ("o_proj", "down_proj")  # the default: outputs that feed only a norm and the residual


def _function():
    import torch

    from tr_gemma.training.fused_lora import keeping_outputs

    class KeptOutputCheckpoint(torch.autograd.Function):
        """A decoder layer, checkpointed: forward keeps the input and the kept projections' outputs;
        backward reruns the layer with those outputs under the forward's RNG and autocast state."""

        @staticmethod
        def forward(ctx, run, to_host, hidden, *params):
            device = hidden.device.type
            ctx.run, ctx.params = run, params
            ctx.autocast = {"device_type": device, "enabled": torch.is_autocast_enabled(device),
                            "dtype": torch.get_autocast_dtype(device)}
            ctx.rng = _rng_state(hidden.device)
            kept: list = []
            with keeping_outputs(kept, replay=False):
                out = run(hidden)
            # moved by this checkpoint (`prefetched_offload`), or saved where the trainer's hooks see them
            ctx.stash = HostStash([hidden, *kept]) if to_host else None
            if not to_host:
                ctx.save_for_backward(hidden, *kept)
            return out

        @staticmethod
        def backward(ctx, grad):
            hidden, *kept = ctx.stash.take() if ctx.stash is not None else ctx.saved_tensors
            wanted = ctx.needs_input_grad[2:]  # hidden, then the LoRA parameters
            x = hidden.detach().requires_grad_(wanted[0])
            now = _rng_state(hidden.device)
            _set_rng_state(hidden.device, ctx.rng)
            try:  # identity hooks: the trainer's offloading context is still open in backward and would
                # otherwise copy every tensor of the recompute to host memory and back (-15% at 27B, measured)
                with torch.enable_grad(), torch.autocast(**ctx.autocast), keeping_outputs(kept, replay=True) as used, \
                        outside_offloading():
                    out = ctx.run(x)
            finally:
                _set_rng_state(hidden.device, now)
            if used.used != len(kept):
                raise RuntimeError(f"the recompute took {used.used} of {len(kept)} kept outputs")
            inputs = [t for t, want in zip((x, *ctx.params), wanted) if want]
            found = iter(torch.autograd.grad(out, inputs, grad, allow_unused=True))
            return (None, None, *(next(found) if want else None for want in wanted))

    return KeptOutputCheckpoint


_CHECKPOINT = None


def _kept_forward(self, hidden_states, *args, **kwargs):
    """A checkpointed training call runs through `KeptOutputCheckpoint`; any other call (evaluation,
    generation, no checkpointing) runs the layer as before."""
    import torch

    global _CHECKPOINT
    if (args or not (self.training and self.gradient_checkpointing and torch.is_grad_enabled())
            or kwargs.get("past_key_values") is not None):
        return self._forward_before_kept_outputs(hidden_states, *args, **kwargs)
    if _CHECKPOINT is None:
        _CHECKPOINT = _function()
    run = functools.partial(self._own_forward, self, **kwargs)
    return _CHECKPOINT.apply(run, self._kept_to_host, hidden_states, *self._lora_params)


def keep_projection_outputs(model, projections=KEPT_PROJECTIONS, to_host: bool = False) -> int:
    """Checkpoint every Gemma3DecoderLayer of `model` with the outputs of `projections` kept (each
    a fused LoRA projection: `fuse_lora` first); returns how many layers. `to_host`: the
    checkpoint moves what it keeps to host memory and fetches it back a layer ahead itself
    (`prefetched_offload`, CUDA only) instead of leaving it to the trainer's offloading hooks."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3DecoderLayer

    wanted = set(projections)
    layers = [m for m in model.modules() if isinstance(m, Gemma3DecoderLayer)]
    for layer in layers:
        found = [module for name, module in layer.named_modules() if name.split(".")[-1] in wanted]
        if len(found) != len(wanted) or not all(hasattr(m, "_peft_forward") for m in found):
            raise ValueError(f"decoder layer {layer.layer_idx}: {', '.join(projections)} must be LoRA "
                             "projections rerouted by fuse_lora before their outputs can be kept")
        for module in found:
            module._keep_output = True
        own_forward = type(layer).forward
        layer._own_forward = getattr(own_forward, "__wrapped__", own_forward)  # transformers' checkpoint wrapper off
        layer._forward_before_kept_outputs = layer.forward
        layer._lora_params = [p for p in layer.parameters() if p.requires_grad]
        layer._kept_to_host = to_host
        layer.forward = types.MethodType(_kept_forward, layer)
    return len(layers)


def _rng_state(device):
    import torch

    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device, state) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)
