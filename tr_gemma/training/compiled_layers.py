"""Each Gemma 3 decoder layer as one torch.compile graph (the `compiled_layers` recipe lever).

At 1B and 4B on an H100 the QLoRA step is bound by the host, not the GPU: a decoder layer takes
as long at 64 tokens as at 8,192 (benchmarks/layer_host_time.py), about 500 PyTorch operators per
layer and pass, each through autocast, autograd, the checkpoint hooks and module Python. Compiled
whole, a layer's forward (and, through AOTAutograd, its backward) is one generated wrapper that
launches fused kernels. The NF4 + LoRA projections enter the graph as opaque ops
(`fused_lora.graph_ops`), attention as PyTorch's varlen op with the packed-row boundaries found
once per forward outside it (`varlen_attention.attach`), and the fused norm/rope/GeGLU functions
inline into it. Gradient checkpointing still wraps each layer, eagerly: the recompute replays the
graph under the RNG state of the forward, so LoRA dropout draws the same masks.
"""

from __future__ import annotations

import functools
import types

from tr_gemma.training.fused_elementwise import compiled_kernel


def _compiled_forward(self, hidden_states, *args, **kwargs):
    """Gemma3DecoderLayer.forward compiled once per process with the layer as an argument: every layer
    of a kind (sliding or global attention) reuses one graph, its parameters being graph inputs;
    `dynamic=True` because packed rows vary in length and in document count.

    transformers' checkpoint wrapper stays outside the graph. Traced into it, the checkpoint became
    part of the graph and its backward reran the NF4 + LoRA op for the recompute, drawing fresh
    dropout masks (gradient cosine 0.85 on the GPU). AOTAutograd restores the RNG state around such
    a rerun only for a tagged op and, on CUDA, only with a process-wide setting off (its default
    graph-safe scheme drew masks unlike PEFT's). Outside, the eager checkpoint restores the RNG
    state and reruns the compiled forward, as it reruns an eager one."""
    checkpointing = type(self).forward  # transformers' wrapper around the class's own forward
    if kwargs.get("past_key_values") is not None:  # generation with a KV cache: transformers' own path
        return checkpointing(self, hidden_states, *args, **kwargs)
    layer_forward = compiled_kernel(checkpointing.__wrapped__)
    if self.gradient_checkpointing and self.training:
        if "use_cache" in kwargs:  # as transformers' wrapper: no cache under checkpointing
            kwargs["use_cache"] = False
        return self._gradient_checkpointing_func(functools.partial(layer_forward, self, **kwargs),
                                                 hidden_states, *args)
    return layer_forward(self, hidden_states, *args, **kwargs)


def compile_decoder_layers(model) -> int:
    """Route every Gemma3DecoderLayer of `model` through a compiled copy of its forward (in place,
    this model only; compiled at the first call); returns how many layers.

    Needs `fused_lora` on 4-bit weights: bitsandbytes' own matmul does not trace."""
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit
    from transformers.models.gemma3.modeling_gemma3 import Gemma3DecoderLayer

    from tr_gemma.training.fused_lora import graph_ops

    graph_ops()  # registered before any tracing: dynamo cannot trace the registration
    compiled = 0
    for module in model.modules():
        if not isinstance(module, Gemma3DecoderLayer):
            continue
        plain = [name for name, sub in module.named_modules()
                 if isinstance(sub, LoraLinear4bit) and not hasattr(sub, "_peft_forward")]
        if plain:
            raise ValueError(f"compiled_layers needs fused_lora on 4-bit LoRA projections; {plain[0]} has PEFT's "
                             "forward (bitsandbytes' matmul cannot be compiled)")
        module.forward = types.MethodType(_compiled_forward, module)
        compiled += 1
    return compiled
