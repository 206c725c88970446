"""Peak GPU memory estimate of a QLoRA step, checked before any weights load.

Documented estimate (bytes of `torch.cuda.max_memory_allocated`), for T = per-device batch x
max_length tokens per micro-step:

  base weights   NF4 linear weights x 0.5 x 1.03 (double-quantised scales) + embeddings x 2 (bf16)
  LoRA           r x (d_in + d_out) per adapted linear x 8 (bf16 weight + grad + 8-bit Adam state + fp32 copy slack)
  activations    T x hidden x 2 per layer (checkpointed layer inputs)
                 + T x (6 x intermediate + 10 x hidden) x 2 (the one layer recomputed in backward)
  loss           the project's trainer (trl's fused LM head, log-probs in tiles, no full logits):
                   T x hidden x 2 x 14 (fitted on H100 peaks: 1B and 4B at 2 x 4096)
                 a plain loss over full logits (loss="full_logits", the baseline):
                   T x vocab x 12 (bf16 logits, fp32 upcast, log-softmax and its gradient; 24 GiB at 8,192 tokens)
  fixed          0.25 GiB (allocator slack, workspaces) for the fused head; 1 GiB with full logits
  attention      attn_implementation "packed_varlen" (PyTorch's varlen FlashAttention) adds one
                 vocab x hidden x 2 (a bf16 embedding-sized tensor): measured +0.3 to +0.5 GiB at 1B,
                 +1.0 to +1.2 at 4B, +1.8 at 12B, +2.4 to +2.6 at 27B, at both sequence lengths and
                 every layer count; its source was not found (the embedding stays tied)

Measured anchors: the project's trainer on H100 at 2 x 4096 (docs/benchmarks.md, issue 8 tables):
1B 2.6-3.0 GiB, 4B 6.5-7.2, 12B 12.7; the plain baseline (research and ours): 1B 29.5, 4B 32.4, 12B 38.3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tr_gemma.training.varlen_attention import NAME as VARLEN_ATTENTION

GIB = 2**30


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
                             loss: str = "fused", attention: str = "sdpa") -> MemoryEstimate:
    """Estimate from a (text) Gemma 3 config dict; see the module docstring for the formula.

    `loss`: "fused" (this project's trainer) or "full_logits" (a plain HF loss, the baseline);
    `attention`: the recipe's `training.attn_implementation`."""
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
    return MemoryEstimate(
        weights=linear_params * 0.5 * 1.03 + embedding_params * 2,
        lora=layers * sum(lora_r * (a + b) for a, b in linear_shapes) * 8,
        activations=tokens * hidden * 2 * layers + tokens * (6 * inter + 10 * hidden) * 2,
        logits=tokens * vocab * 12 if loss == "full_logits" else tokens * hidden * 2 * 14,
        fixed=(1 * GIB if loss == "full_logits" else 0.25 * GIB)
        + (embedding_params * 2 if attention == VARLEN_ATTENTION else 0),
    )


def estimate_for_checkpoint(model_dir: Path, batch_size: int, max_length: int, lora_r: int,
                            attention: str = "sdpa") -> MemoryEstimate:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return estimate_training_memory(config, batch_size, max_length, lora_r, attention=attention)
