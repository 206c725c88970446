"""The GPU as a Dagster resource: device choice, memory preflight, trainer process launch."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

import dagster as dg
from pydantic import Field


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_mib: int
    free_mib: int


class GpuResource(dg.ConfigurableResource):
    """Which device heavy work runs on, whether it fits, and the process that runs it.

    Heavy work (training, evaluation) runs in a child process through Dagster Pipes, so the
    code location never imports torch; its logs and metrics stream into the run.
    """

    device: Literal["auto", "cuda", "cpu"] = Field(
        default="auto", description="auto: the GPU when one is visible, else the CPU (smoke budget)."
    )
    visible_devices: str = Field(default="", description="CUDA_VISIBLE_DEVICES for the child process ('' = all).")
    usable_memory_fraction: float = Field(
        default=0.92, gt=0, le=1, description="Share of a GPU's free memory a job may plan to use."
    )

    def gpus(self) -> list[GpuInfo]:
        """GPUs seen by nvidia-smi (no torch import in the orchestrating process)."""
        if shutil.which("nvidia-smi") is None:
            return []
        query = "--query-gpu=index,name,memory.total,memory.free"
        try:
            out = subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
        except (subprocess.SubprocessError, OSError):
            return []
        found = []
        for line in out.strip().splitlines():
            index, name, total, free = (part.strip() for part in line.split(","))
            found.append(GpuInfo(int(index), name, int(total), int(free)))
        if self.visible_devices:
            wanted = {int(i) for i in self.visible_devices.split(",") if i.strip()}
            found = [g for g in found if g.index in wanted]
        return found

    def resolve_device(self) -> str:
        gpus = self.gpus()
        if self.device == "cuda" and not gpus:
            raise dg.Failure("GPU resource: device 'cuda' requested but no NVIDIA GPU is visible "
                             "(nvidia-smi found none). Set device to 'auto' or 'cpu'.", allow_retries=False)
        if self.device == "cpu" or not gpus:
            return "cpu"
        return "cuda"

    def preflight(self, estimate_bytes: float, described: str, what: str) -> str:
        """The device to use; fails before any weights load when the job cannot fit."""
        device = self.resolve_device()
        if device == "cpu":
            return device
        best = max(self.gpus(), key=lambda g: g.free_mib)
        usable = best.free_mib * 2**20 * self.usable_memory_fraction
        if estimate_bytes > usable:
            raise dg.Failure(
                f"{what} needs about {described}, but GPU {best.index} ({best.name}) has "
                f"{best.free_mib / 1024:.1f} GiB free ({self.usable_memory_fraction:.0%} usable). Lower "
                "per_device_train_batch_size or max_length (the 262k-vocabulary logits grow with "
                "batch x length), or use a smaller model size.",
                allow_retries=False,
            )
        return device

    def run_module(self, context: dg.AssetExecutionContext, module: str, extras: dict) -> dg.PipesClientCompletedInvocation:
        """Run `python -m module` as a Pipes child process of this step."""
        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if self.visible_devices:
            env["CUDA_VISIBLE_DEVICES"] = self.visible_devices
        client = dg.PipesSubprocessClient(env={**os.environ, **env})
        return client.run(command=[sys.executable, "-m", module], context=context, extras=extras)
