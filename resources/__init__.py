"""Dagster resources, one per external system, and the factory that wires them together."""

from __future__ import annotations

import os

import dagster as dg

from resources.artifacts import ArtifactStore, ParquetIOManager
from resources.gemma_checkpoints import GemmaCheckpoints
from resources.gpu import GpuResource
from resources.huggingface import HuggingFaceHub
from resources.kubernetes import DEPLOYMENT_ENV, launcher_from_env

DEPLOYMENTS = ("local", "kubernetes")


def selected_deployment() -> str:
    """`local` (default) or `kubernetes`, from TR_GEMMA_DEPLOYMENT."""
    deployment = os.environ.get(DEPLOYMENT_ENV, "").strip().lower() or "local"
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"{DEPLOYMENT_ENV}={deployment!r}: choose one of {', '.join(DEPLOYMENTS)}")
    return deployment


def build_resources(artifacts_root: str | None = None, cache_dir: str = "", deployment: str | None = None) -> dict[str, object]:
    """The resources of one deployment, chosen by `deployment` or else TR_GEMMA_DEPLOYMENT.

    local (default): heavy steps run as child processes of the run (GpuResource), artifacts under
    ./artifacts. kubernetes: heavy steps run as pods on GPU nodes (KubernetesGpuLauncher, set by
    TR_GEMMA_K8S_* variables), artifacts and checkpoints on the volumes those pods mount too.
    """
    deployment = deployment or selected_deployment()
    # The token is read at run launch through EnvVar (never shown in the UI); without HF_TOKEN
    # the embedded defaults still run, so the field is left empty instead of failing the launch.
    token = dg.EnvVar("HF_TOKEN") if os.environ.get("HF_TOKEN") else None
    hub = HuggingFaceHub(token=token)
    if deployment == "kubernetes":
        gpu = launcher_from_env(os.environ)
        artifacts_root = artifacts_root or gpu.artifacts_mount_path
        cache_dir = cache_dir or gpu.checkpoint_cache_dir()
    else:
        # GPUs per training run and the multi-GPU strategy: from the environment of the host,
        # overridable per run in the launchpad (resources.gpu.config)
        gpu = GpuResource(num_gpus=int(os.environ.get("TR_GEMMA_NUM_GPUS", "1")),
                          strategy=os.environ.get("TR_GEMMA_DISTRIBUTED_STRATEGY", "ddp"))
    store = ArtifactStore(root=artifacts_root or "artifacts")
    return {
        "hf_hub": hub,
        "artifacts": store,
        "io_manager": ParquetIOManager(store=store),
        "gemma_checkpoints": GemmaCheckpoints(cache_dir=cache_dir, hub=hub),
        "gpu": gpu,
    }
