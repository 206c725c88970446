"""Downloading Gemma 3 checkpoints from the Hub at a pinned revision (text-only for 4B+)."""

from __future__ import annotations

import json
from pathlib import Path

from tr_gemma.checkpoints import extract_text_model
from tr_gemma.hub import DEFAULT_TIMEOUT_S, probe_repo

_FILES = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja"]


def download_checkpoint(
    repo_id: str, revision: str, token: str | None, cache_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[Path, str]:
    """Local folder of a text-only Gemma 3 checkpoint and the commit sha it came from."""
    from huggingface_hub import snapshot_download

    resolved = probe_repo(repo_id, revision, "model", token, timeout_s,
                          alternatives="Use base_model source 'embedded' (270m) or 'path' instead.")
    folder = Path(
        snapshot_download(repo_id, revision=resolved.sha, token=token, allow_patterns=_FILES,
                          cache_dir=str(Path(cache_dir) / "hub"))
    )
    if json.loads((folder / "config.json").read_text())["model_type"] == "gemma3":
        text_folder = Path(cache_dir) / "text-only" / f"{repo_id.replace('/', '--')}-{resolved.sha[:12]}"
        if not (text_folder / "config.json").is_file():
            extract_text_model(folder, text_folder)
        folder = text_folder
    return folder, resolved.sha
