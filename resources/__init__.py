"""Dagster resources, one per external system, and the factory that wires them together."""

from __future__ import annotations

import os

import dagster as dg

from resources.artifacts import ArtifactStore, ParquetIOManager
from resources.gemma_checkpoints import GemmaCheckpoints
from resources.gpu import GpuResource
from resources.huggingface import HuggingFaceHub


def build_resources(artifacts_root: str = "artifacts", cache_dir: str = "") -> dict[str, object]:
    """The resources of the default (local) deployment."""
    # The token is read at run launch through EnvVar (never shown in the UI); without HF_TOKEN
    # the embedded defaults still run, so the field is left empty instead of failing the launch.
    token = dg.EnvVar("HF_TOKEN") if os.environ.get("HF_TOKEN") else None
    hub = HuggingFaceHub(token=token)
    store = ArtifactStore(root=artifacts_root)
    return {
        "hf_hub": hub,
        "artifacts": store,
        "io_manager": ParquetIOManager(store=store),
        "gemma_checkpoints": GemmaCheckpoints(cache_dir=cache_dir, hub=hub),
        "gpu": GpuResource(),
    }
