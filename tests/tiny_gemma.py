"""Tiny random Gemma 3 models of the real architecture, for fast CPU tests."""

from __future__ import annotations

from pathlib import Path


def tiny_text_config(vocab_size: int = 262_144, **overrides):
    from transformers import Gemma3TextConfig

    values = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
        max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=2,
        layer_types=["sliding_attention", "full_attention"],
    )
    values.update(overrides)
    return Gemma3TextConfig(**values)


def save_tiny_multimodal(folder: Path, vocab_size: int = 512) -> Path:
    """A Gemma3ForConditionalGeneration (text + 1-layer SigLIP) saved like the 4B+ checkpoints."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig

    torch.manual_seed(0)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=8, patch_size=4)
    config = Gemma3Config(text_config=tiny_text_config(vocab_size).to_dict(), vision_config=vision.to_dict(),
                          mm_tokens_per_image=4, image_token_index=vocab_size - 1,
                          boi_token_index=vocab_size - 3, eoi_token_index=vocab_size - 2)
    model = Gemma3ForConditionalGeneration(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return Path(folder)


def save_tiny_text_model(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A tiny random Gemma3ForCausalLM with the real Gemma 3 tokenizer, saved like base_model."""
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(tiny_text_config(hidden_size=64, intermediate_size=128, head_dim=32))
    model.save_pretrained(folder, safe_serialization=True)
    for file in Path(tokenizer_dir).iterdir():
        shutil.copy2(file, Path(folder) / file.name)
    return Path(folder)
