"""Gemma 3 checkpoints and tokenizer: the embedded 270M package, converted once and cached."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.huggingface import HuggingFaceHub


class GemmaCheckpoints(dg.ConfigurableResource):
    """Resolves Gemma 3 model and tokenizer folders (cached conversions, Hub downloads)."""

    cache_dir: str = Field(
        default="",
        description="Cache for converted checkpoints; empty means $TR_GEMMA_CACHE or ~/.cache/tr_gemma.",
    )
    hub: HuggingFaceHub

    def cache_path(self) -> Path:
        from tr_gemma.checkpoints import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def tokenizer_path(self) -> Path:
        """The real Gemma 3 tokenizer (every Gemma 3 size shares it), from the embedded 270M."""
        from tr_gemma.checkpoints import ensure_embedded_tokenizer

        return ensure_embedded_tokenizer(self.cache_path())

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.tokenizer_path())
