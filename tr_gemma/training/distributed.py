"""Where this trainer process sits in a multi-GPU launch (torchrun / accelerate set the variables).

One GPU: a single process, rank 0 of 1. Several GPUs: `torchrun --nproc_per_node N` starts one
process per GPU; each trains on its share of every batch (DDP) or of the weights too (FSDP), and
only rank 0 talks to Dagster and writes the adapter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["ddp", "fsdp"]
STRATEGY_ENV = "TR_GEMMA_DISTRIBUTED_STRATEGY"


@dataclass(frozen=True)
class Placement:
    rank: int
    local_rank: int
    world_size: int
    strategy: Strategy

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def sharded(self) -> bool:
        """FSDP over several processes (the 4-bit weights split across the GPUs)."""
        return self.distributed and self.strategy == "fsdp"


def unless_sharded(requested: bool, sharded: bool) -> bool:
    """Whether a recipe lever not measured under FSDP (activation offloading and the fused norm
    kernels: one GPU and DDP; the fused NF4 + LoRA function: one GPU) is on: as the recipe asks,
    except under FSDP, whose sharded 4-bit weights none of them was tried on."""
    return requested and not sharded


def placement() -> Placement:
    strategy = os.environ.get(STRATEGY_ENV, "ddp")
    if strategy not in ("ddp", "fsdp"):
        raise ValueError(f"{STRATEGY_ENV}={strategy!r}: choose 'ddp' or 'fsdp'")
    return Placement(
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        strategy=strategy,  # type: ignore[arg-type]
    )


def launch_command(python: str, module: str, processes: int) -> list[str]:
    """`python -m module`, or torchrun starting `processes` ranks of it on this host."""
    if processes == 1:
        return [python, "-m", module]
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", module]


def per_device_accumulation(gradient_accumulation_steps: int, world_size: int) -> tuple[int, str | None]:
    """Accumulation steps per process that keep the recipe's global batch on `world_size` GPUs.

    The recipe's batch is per device x accumulation on one GPU; with N GPUs each step already
    sees N times the sequences, so accumulation is divided by N when it divides evenly (the loss
    curve then matches a one-GPU run). Otherwise the global batch grows, and a note says so.
    """
    if world_size <= 1:
        return gradient_accumulation_steps, None
    if gradient_accumulation_steps % world_size == 0:
        steps = gradient_accumulation_steps // world_size
        return steps, (f"{world_size} GPUs: gradient accumulation {gradient_accumulation_steps} -> {steps} "
                       "per GPU, so the global batch equals the recipe's one-GPU batch")
    return gradient_accumulation_steps, (
        f"{world_size} GPUs: gradient accumulation {gradient_accumulation_steps} is not divisible by "
        f"{world_size}; the global batch is {world_size}x the recipe's"
    )
