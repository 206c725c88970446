"""The real Gemma 3 text-model shapes (from Google's configs), for random-weight benchmarks."""

from __future__ import annotations

VOCAB = 262_144

SHAPES: dict[str, dict] = {
    "270m": dict(hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
                 num_key_value_heads=1, head_dim=256, sliding_window=512, query_pre_attn_scalar=256),
    "1b": dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
               num_key_value_heads=1, head_dim=256, sliding_window=512, query_pre_attn_scalar=256),
    "4b": dict(hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
               num_key_value_heads=4, head_dim=256, sliding_window=1024, query_pre_attn_scalar=256),
    "12b": dict(hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
                num_key_value_heads=8, head_dim=256, sliding_window=1024, query_pre_attn_scalar=256),
    "27b": dict(hidden_size=5376, intermediate_size=21504, num_hidden_layers=62, num_attention_heads=32,
                num_key_value_heads=16, head_dim=128, sliding_window=1024, query_pre_attn_scalar=168),
    # CPU smoke test of the benchmark itself (not a Gemma size)
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=32, sliding_window=64, query_pre_attn_scalar=32),
}


def text_config(size: str, layers: int | None = None) -> dict:
    shape = dict(SHAPES[size])
    if layers:
        shape["num_hidden_layers"] = layers
    return dict(vocab_size=VOCAB, max_position_embeddings=32_768, rope_theta=1_000_000.0, **shape)


def matmul_parameters(config: dict) -> int:
    """Parameters that take part in matmuls per token: every block linear plus the tied LM head."""
    d, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    per_layer = d * q * 2 + d * kv * 2 + 3 * d * inter
    return per_layer * layers + config["vocab_size"] * d
