"""Gemma 3 text-model shapes for random-weight benchmarks (tr_gemma.gemma3_shapes, plus a tiny CPU one)."""

from __future__ import annotations

from tr_gemma.gemma3_shapes import SHAPES as GEMMA3_SHAPES
from tr_gemma.gemma3_shapes import text_config as gemma3_text_config

# CPU smoke test of the benchmark itself (not a Gemma size)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            head_dim=32, sliding_window=64, query_pre_attn_scalar=32, vocab_size=262_144)


def text_config(size: str, layers: int | None = None) -> dict:
    if size in GEMMA3_SHAPES:
        return gemma3_text_config(size, layers)
    shape = dict(TINY, num_hidden_layers=layers or TINY["num_hidden_layers"])
    return dict(max_position_embeddings=32_768, rope_theta=1_000_000.0, **shape)


def matmul_parameters(config: dict) -> int:
    """Parameters that take part in matmuls per token: every block linear plus the tied LM head."""
    d, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    per_layer = d * q * 2 + d * kv * 2 + 3 * d * inter
    return per_layer * layers + config["vocab_size"] * d
