"""The text-model shapes of the published Gemma 3 checkpoints (`text_config` of
google/gemma-3-<size>-pt), for sizing pods before a checkpoint is on disk and for random-weight
benchmarks. A checkpoint's own config.json wins wherever it can be read."""

from __future__ import annotations

SHAPES: dict[str, dict] = {
    "270m": dict(hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
                 num_key_value_heads=1, head_dim=256, sliding_window=512, query_pre_attn_scalar=256,
                 vocab_size=262_144),
    "1b": dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4,
               num_key_value_heads=1, head_dim=256, sliding_window=512, query_pre_attn_scalar=256,
               vocab_size=262_144),
    # 4B and up: the multimodal checkpoints' text models, whose embedding also holds the image tokens
    "4b": dict(hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
               num_key_value_heads=4, head_dim=256, sliding_window=1024, query_pre_attn_scalar=256,
               vocab_size=262_208),
    "12b": dict(hidden_size=3840, intermediate_size=15360, num_hidden_layers=48, num_attention_heads=16,
                num_key_value_heads=8, head_dim=256, sliding_window=1024, query_pre_attn_scalar=256,
                vocab_size=262_208),
    "27b": dict(hidden_size=5376, intermediate_size=21504, num_hidden_layers=62, num_attention_heads=32,
                num_key_value_heads=16, head_dim=128, sliding_window=1024, query_pre_attn_scalar=168,
                vocab_size=262_208),
}


def text_config(size: str, layers: int | None = None) -> dict:
    """A Gemma3TextConfig-style dict of `size`, optionally with fewer decoder layers."""
    shape = dict(SHAPES[size])
    if layers:
        shape["num_hidden_layers"] = layers
    return dict(max_position_embeddings=32_768, rope_theta=1_000_000.0, **shape)
