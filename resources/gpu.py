"""The GPU as a Dagster resource: device choice, memory preflight, trainer process launch."""

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from resources.device_lock import LOCK_DIR_ENV, default_lock_dir, exclusive_devices
from resources.pipes_messages import WholeLineMessageReader


# Entry points that run data-parallel over several GPUs when num_gpus > 1.
DISTRIBUTED_MODULES = frozenset({"tr_gemma.training.pipes_main"})


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
    num_gpus: int = Field(
        default=1, ge=1, description="GPUs one training run uses; above 1 the trainer is launched with torchrun "
        "(one process per GPU; with device 'cpu', that many CPU processes, for testing the launch)."
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        default="ddp",
        description="Multi-GPU strategy: ddp (each GPU holds the 4-bit model, batches split) or fsdp "
        "(weights sharded too, for sizes one GPU cannot hold).",
    )

    lock_dir: str = Field(
        default="", description="Folder of the per-device locks that keep two runs on this host off one GPU "
        f"('' = ${LOCK_DIR_ENV}, else the system temp folder).",
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
        if gpus and self.device != "cpu" and len(gpus) < self.num_gpus:
            raise dg.Failure(f"GPU resource: num_gpus={self.num_gpus} but only {len(gpus)} GPU(s) are visible "
                             f"({', '.join(g.name for g in gpus)}). Lower num_gpus.", allow_retries=False)
        if self.device == "cuda" and not gpus:
            raise dg.Failure("GPU resource: device 'cuda' requested but no NVIDIA GPU is visible "
                             "(nvidia-smi found none). Set device to 'auto' or 'cpu'.", allow_retries=False)
        if self.device == "cpu" or not gpus:
            return "cpu"
        return "cuda"

    @property
    def shards_training(self) -> bool:
        """Training runs FSDP over several GPUs (the trainer's memory is planned for that)."""
        return self.strategy == "fsdp" and self.num_gpus > 1

    def preflight(self, estimate_bytes: float, described: str, what: str, shardable_bytes: float = 0.0) -> str:
        """The device to use; fails before any weights load when the job cannot fit."""
        device = self.resolve_device()
        if device == "cpu":
            return device
        # every GPU of the launch must hold its share: the whole job for DDP, a 1/N shard for FSDP
        best = sorted(self.gpus(), key=lambda g: g.free_mib)[-self.num_gpus]
        usable = best.free_mib * 2**20 * self.usable_memory_fraction
        if self.strategy == "fsdp":  # weights and LoRA are sharded; activations and loss stay per GPU
            estimate_bytes -= shardable_bytes * (1 - 1 / self.num_gpus)
        if estimate_bytes > usable:
            raise dg.Failure(
                f"{what} needs about {described}, but GPU {best.index} ({best.name}) has "
                f"{best.free_mib / 1024:.1f} GiB free ({self.usable_memory_fraction:.0%} usable). Lower "
                "per_device_train_batch_size or max_length (activations and the loss grow with "
                "batch x length), or use a smaller model size.",
                allow_retries=False,
            )
        return device

    @contextlib.contextmanager
    def reserved(self, context: dg.AssetExecutionContext) -> Iterator[None]:
        """Hold this resource's devices (every visible GPU, or the CPU) for the block: wrap the
        memory preflight and the child process in it, so a step never measures free memory or
        trains while another run of this host is still on the same GPU (see resources.device_lock)."""
        devices = ["cpu"] if self.resolve_device() == "cpu" else [f"gpu{g.index}" for g in self.gpus()]
        partition = f"[{context.partition_key}]" if context.has_partition_key else ""
        holder = f"run {context.run.run_id} ({context.asset_key.to_user_string()}{partition}, pid {os.getpid()})"
        with exclusive_devices(devices, holder, context.log.info, Path(self.lock_dir) if self.lock_dir else default_lock_dir()):
            context.log.info(f"Holding {', '.join(devices)} for this step.")
            try:
                yield
            finally:
                context.log.info(f"Releasing {', '.join(devices)}.")

    def launch_command(self, module: str) -> list[str]:
        """The child process: `python -m module`, or torchrun over `num_gpus` GPUs of this host
        for the trainer (evaluation stays on one GPU)."""
        processes = self.num_gpus if module in DISTRIBUTED_MODULES else 1
        if self.device == "auto" and self.resolve_device() == "cpu":
            processes = 1  # no GPU: the recipe's CPU smoke budget, one process
        # device "cpu" with num_gpus > 1 keeps N CPU processes (gloo): the launch, testable without GPUs
        from tr_gemma.training.distributed import launch_command

        return launch_command(sys.executable, module, processes)

    def launch_env(self) -> dict[str, str]:
        from tr_gemma.training.distributed import STRATEGY_ENV

        env = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", STRATEGY_ENV: self.strategy}
        if self.visible_devices:
            env["CUDA_VISIBLE_DEVICES"] = self.visible_devices
        return env

    def run_module(self, context: dg.AssetExecutionContext, module: str, extras: dict) -> dg.PipesClientCompletedInvocation:
        """Run `module` as a Pipes child process of this step (with torchrun: one process per GPU,
        rank 0 reports to Dagster)."""
        client = dg.PipesSubprocessClient(env={**os.environ, **self.launch_env()},
                                          message_reader=WholeLineMessageReader())
        return client.run(command=self.launch_command(module), context=context, extras=extras)
