"""Gemma 3 sizes the pipeline trains, with the facts that differ between them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GemmaSize:
    key: str
    context_length: int
    multimodal: bool  # 4B+ checkpoints carry a SigLIP vision tower we do not train

    def hub_id(self, variant: str) -> str:
        if variant not in ("pt", "it"):
            raise ValueError(f"variant must be 'pt' or 'it', got '{variant}'")
        if self.key == "270m":
            return "google/gemma-3-270m" + ("-it" if variant == "it" else "")
        return f"google/gemma-3-{self.key}-{variant}"


SIZES: dict[str, GemmaSize] = {
    "270m": GemmaSize("270m", 32_768, False),
    "1b": GemmaSize("1b", 32_768, False),
    "4b": GemmaSize("4b", 131_072, True),
    "12b": GemmaSize("12b", 131_072, True),
    "27b": GemmaSize("27b", 131_072, True),
}


def gemma_size(key: str) -> GemmaSize:
    try:
        return SIZES[key]
    except KeyError:
        raise ValueError(f"unknown Gemma 3 size '{key}'; choose one of {', '.join(SIZES)}") from None

