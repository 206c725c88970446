"""Peak GPU memory estimate of a QLoRA step, checked before any weights load.

Documented estimate (bytes of `torch.cuda.max_memory_allocated`), for T = per-device batch x
max_length tokens per micro-step:

  base weights   NF4 linear weights x 0.5 x 1.03 (double-quantised scales) + embeddings x 2 (bf16)
  LoRA           r x (d_in + d_out) per adapted linear x 8 (bf16 weight + grad + 8-bit Adam state + fp32 copy slack)
  activations    T x hidden x 2 per layer (checkpointed layer inputs), only 2 layers' worth with
                 activation offloading (the rest wait in host memory; measured: 1.5-2.4 layers stay);
                 offloading the inputs of N layers only (offload_scope layer_inputs, offloaded_layers
                 N): the other layers' inputs stay, plus 2 of the N
                 with keep_projection_outputs each kept layer holds its kept_projections' outputs
                 too (T x their widths x 2 beside the T x hidden x 2 input)
                 + T x (6 x intermediate + 10 x hidden) x 2 (the one layer recomputed in backward)
                 - T x hidden x 28 with the fused RMSNorm/GeGLU kernels (eager RMSNorm keeps fp32
                   copies for its backward; measured 0.27-1.05 GiB less at 1B-27B, 2 x 4096)
                 - T x (5 x hidden + q_out + intermediate) x 3 without LoRA dropout (the recomputed
                   layer no longer keeps a dropped-out bf16 copy and a bool mask of each adapter's
                   input; measured 0.30-1.06 GiB less at 1B-27B, 2 x 4096)
                 - T x (5 x hidden + q_out + intermediate) x 2 with dropout since the fused LoRA
                   rebuilds the dropped copy in backward (only the mask is kept, 1 byte), x 2.875
                   with compact_dropout_masks (one bit), x 3 with dropout_in_lora_kernels (none),
                   x 2.875 with it and kernel_dropout_bitmask (one bit)
                 + T x hidden x 40 with cuda_graph_layers (static buffers, and the graphs' private
                   pool, which the rest of the step cannot reuse; fitted on 1B and 4B, 2 x 4096)
                 without gradient checkpointing, every layer keeps its activations instead:
                   layers x T x (9 x intermediate + 44 x hidden) (fitted on H100 peaks: 1B 24.1 GiB,
                   4B 57.1 GiB at 2 x 4096, unfused kernels; the fused saving is not subtracted)
  loss           the project's trainer (trl's fused LM head, log-probs in tiles, no full logits):
                   T x hidden x 2 x 14 (fitted on H100 peaks: 1B and 4B at 2 x 4096)
                 a plain loss over full logits (loss="full_logits", the baseline):
                   T x vocab x 12 (bf16 logits, fp32 upcast, log-softmax and its gradient; 24 GiB at 8,192 tokens)
  fixed          0.25 GiB (allocator slack, workspaces) for the fused head; 1 GiB with full logits
  attention      SDPA with packed rows builds dense masks: batch x max_length^2 x 8 bytes (0.25 GiB at
                 2 x 4096); varlen and flex attention build none

Measured anchors (docs/benchmarks.md, issue 8 tables): the project's trainer on H100 at 2 x 4096,
varlen and offloading: 1B 2.22 GiB, 4B 5.24, 12B 10.9, 27B 20.3 (extrapolated); with the fused
kernels too: 4B 4.69, 12B 10.09, 27B 19.3 (extrapolated); with fused_lora too (the recipe
defaults since 2026-11-27): 1B 2.26, 4B 4.89, 12B 10.36, 27B 19.5 (extrapolated);
the plain baseline: 1B 25.5, 4B 28.5, 12B 34.5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tr_gemma.training.kept_outputs import KEPT_PROJECTIONS

GIB = 2**30
DENSE_MASK_ATTENTION = ("sdpa", "eager")
OFFLOADED_LAYERS_KEPT = 2
FUSED_NORM_SAVING = 28  # bytes per token per hidden unit (fitted on H100 peaks, 1B-27B)
DROPOUT_BYTES = 3  # per element of an adapter input: the bf16 dropped-out copy and the bool mask (fitted so)
MASK_BYTES = {"copy": 3, "mask": 1, "bitmask": 0.125, "none": 0}  # what the fused LoRA keeps, by version (see below)
GRAPH_BYTES = 40  # per token per hidden unit, cuda_graph_layers (fitted on H100 peaks, 1B and 4B)
UNCHECKPOINTED_LAYER_BYTES = (9, 44)  # per token: x intermediate, x hidden (fitted, 1B and 4B)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: float
    lora: float
    activations: float
    logits: float
    fixed: float

    @property
    def total(self) -> float:
        return self.weights + self.lora + self.activations + self.logits + self.fixed

    def describe(self) -> str:
        parts = ", ".join(f"{k} {getattr(self, k) / GIB:.1f}" for k in ("weights", "lora", "activations", "logits", "fixed"))
        return f"{self.total / GIB:.1f} GiB ({parts})"


def estimate_training_memory(config: dict, batch_size: int, max_length: int, lora_r: int, n_targets: int = 7,
                             loss: str = "fused", attention: str = "sdpa", offloading: bool = False,
                             fused_norms: bool = False, checkpointing: bool = True,
                             lora_dropout: bool = True, offloaded_layers: int | None = None,
                             compact_masks: bool = False, cuda_graphs: bool = False,
                             dropout_kept: str | None = None, kept_outputs: bool = False,
                             kernel_dropout: bool = False, kept_projections: tuple = KEPT_PROJECTIONS,
                             kernel_bits: bool = False) -> MemoryEstimate:
    """Estimate from a (text) Gemma 3 config dict; see the module docstring for the formula.

    `loss`: "fused" (this project's trainer) or "full_logits" (a plain HF loss, the baseline);
    `attention`: the recipe's `training.attn_implementation`; `offloading`: whether checkpointed
    activations go to host memory (the recipe's `training.activation_offloading`, off under FSDP);
    `fused_norms`: the recipe's `training.fused_norm_activation` (off under FSDP); `checkpointing`:
    the recipe's `training.gradient_checkpointing`; `lora_dropout`: whether `lora.lora_dropout` > 0;
    `offloaded_layers`: with offloading, how many layers' inputs it moves (None: all; the recipe's
    `training.offloaded_layers`, which only the `layer_inputs` scope accepts); `compact_masks`,
    `cuda_graphs`: the recipe's `training.compact_dropout_masks` and `training.cuda_graph_layers`;
    `dropout_kept`: what the adapters keep of their dropout for backward, "copy" for PEFT's LoRA and
    for peaks measured before 2026-11-28 (the dropped copy and a byte mask), else from `compact_masks`;
    `kept_outputs`: the recipe's `training.keep_projection_outputs` (each checkpointed layer keeps
    the outputs of `kept_projections`, the recipe's `training.kept_projections`, beside its input,
    where its input is kept); `kernel_dropout`: the recipe's `training.dropout_in_lora_kernels` (no
    mask kept, where `dropout_kept` is not given; one bit an element with `kernel_bits`, the
    recipe's `training.kernel_dropout_bitmask`)."""
    if loss not in ("fused", "full_logits"):
        raise ValueError(f"loss must be 'fused' or 'full_logits', got {loss!r}")
    text = config.get("text_config", config)
    hidden, inter = text["hidden_size"], text["intermediate_size"]
    layers, vocab = text["num_hidden_layers"], text["vocab_size"]
    heads, kv_heads = text["num_attention_heads"], text["num_key_value_heads"]
    head_dim = text.get("head_dim") or hidden // heads
    q_out, kv_out = heads * head_dim, kv_heads * head_dim
    linear_shapes = [(hidden, q_out), (hidden, kv_out), (hidden, kv_out), (q_out, hidden),
                     (hidden, inter), (hidden, inter), (inter, hidden)][:n_targets]
    linear_params = layers * sum(a * b for a, b in linear_shapes)
    embedding_params = vocab * hidden
    tokens = batch_size * max_length
    kernel_kind = "bitmask" if kernel_bits else "none"
    mask_kind = dropout_kept or (kernel_kind if kernel_dropout else "bitmask" if compact_masks else "mask")
    widths = {"q_proj": q_out, "k_proj": kv_out, "v_proj": kv_out, "o_proj": hidden, "gate_proj": inter,
              "up_proj": inter, "down_proj": hidden}
    kept_width = hidden + (sum(widths[name] for name in kept_projections) if kept_outputs else 0)
    kept_bytes = MASK_BYTES[mask_kind] if lora_dropout else 0
    if checkpointing:
        moved = min(layers, layers if offloaded_layers is None else offloaded_layers) if offloading else 0
        kept = layers - moved + min(moved, OFFLOADED_LAYERS_KEPT)
        activations = (tokens * kept_width * 2 * kept
                       + tokens * (6 * inter + 10 * hidden) * 2
                       - (tokens * hidden * FUSED_NORM_SAVING if fused_norms else 0)
                       - tokens * (5 * hidden + q_out + inter) * (DROPOUT_BYTES - kept_bytes)
                       + (tokens * hidden * GRAPH_BYTES if cuda_graphs else 0))
    else:
        per_inter, per_hidden = UNCHECKPOINTED_LAYER_BYTES
        activations = layers * tokens * (per_inter * inter + per_hidden * hidden)
    if attention in DENSE_MASK_ATTENTION:
        activations += batch_size * max_length**2 * 8
    return MemoryEstimate(
        weights=linear_params * 0.5 * 1.03 + embedding_params * 2,
        lora=layers * sum(lora_r * (a + b) for a, b in linear_shapes) * 8,
        activations=activations,
        logits=tokens * vocab * 12 if loss == "full_logits" else tokens * hidden * 2 * 14,
        fixed=1 * GIB if loss == "full_logits" else 0.25 * GIB,
    )


def estimate_for_checkpoint(model_dir: Path, batch_size: int, max_length: int, lora_r: int,
                            attention: str = "sdpa", offloading: bool = False, fused_norms: bool = False,
                            checkpointing: bool = True, lora_dropout: bool = True,
                            offloaded_layers: int | None = None, compact_masks: bool = False,
                            cuda_graphs: bool = False, fused_lora: bool = True,
                            kept_outputs: bool = False, kernel_dropout: bool = False,
                            kept_projections: tuple = KEPT_PROJECTIONS,
                            kernel_bits: bool = False) -> MemoryEstimate:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return estimate_training_memory(config, batch_size, max_length, lora_r, attention=attention, offloading=offloading,
                                    fused_norms=fused_norms, checkpointing=checkpointing, lora_dropout=lora_dropout,
                                    offloaded_layers=offloaded_layers, compact_masks=compact_masks,
                                    cuda_graphs=cuda_graphs, dropout_kept=None if fused_lora else "copy",
                                    kept_outputs=kept_outputs, kernel_dropout=kernel_dropout,
                                    kept_projections=kept_projections, kernel_bits=kernel_bits)
