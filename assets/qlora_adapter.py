"""Stage 4: QLoRA fine-tuning of Gemma 3, one adapter per model size."""

import hashlib
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from assets.base_model import read_base_model_manifest
from assets.partitions import model_sizes
from resources.artifacts import ArtifactStore
from resources.gpu import GpuResource
from tr_gemma.errors import PipelineInputError
from tr_gemma.training.recipe import recipes_digest


class QLoRAConfig(dg.Config):
    """Per-run overrides of the size's recipe (recipes/gemma-3-<size>.yaml); empty = recipe value."""

    max_steps: Optional[int] = Field(default=None, description="Optimizer steps (-1 = run the epochs).")
    num_train_epochs: Optional[float] = Field(default=None, description="Epochs over the training split.")
    learning_rate: Optional[float] = Field(default=None, description="Peak learning rate.")
    lora_r: Optional[int] = Field(default=None, description="LoRA rank.")
    lora_alpha: Optional[int] = Field(default=None, description="LoRA alpha.")
    max_length: Optional[int] = Field(default=None, description="Tokens per packed training sequence.")
    per_device_train_batch_size: Optional[int] = Field(default=None, description="Sequences per device per micro-step.")
    gradient_accumulation_steps: Optional[int] = Field(default=None, description="Micro-steps per optimizer step.")
    save_steps: Optional[int] = Field(default=None, description="Checkpoint every N steps (for resuming).")
    precision: Literal["bf16", "fp16"] = Field(default="bf16", description="bf16 only: fp16 is refused for Gemma 3.")
    cpu_max_steps: Optional[int] = Field(default=None, description="Step budget when no GPU is present.")

    def recipe_overrides(self) -> dict:
        training = {k: getattr(self, k) for k in ("max_steps", "num_train_epochs", "learning_rate", "max_length",
                    "per_device_train_batch_size", "gradient_accumulation_steps", "save_steps") if getattr(self, k) is not None}
        if self.precision == "fp16":
            training.update(fp16=True, bf16=False)
        lora = {k: v for k, v in (("r", self.lora_r), ("lora_alpha", self.lora_alpha)) if v is not None}
        cpu = {"max_steps": self.cpu_max_steps} if self.cpu_max_steps is not None else {}
        return {key: value for key, value in (("training", training), ("lora", lora), ("cpu", cpu)) if value}


@dg.asset(
    partitions_def=model_sizes,
    deps=["gemma_chat_dataset", "base_model"],
    group_name="training",
    kinds={"pytorch", "peft", "huggingface"},
    owners=["team:ml-platform"],
    code_version=f"1-recipes-{recipes_digest()}",  # a recipe edit marks the adapters stale
    pool="gpu",
    check_specs=[dg.AssetCheckSpec("loss_is_finite", asset="qlora_adapter", blocking=True,
                                   description="Training loss and gradient norm stayed finite and did not diverge.")],
)
def qlora_adapter(context: dg.AssetExecutionContext, config: QLoRAConfig, gpu: GpuResource, artifacts: ArtifactStore):
    """A LoRA adapter (r=32, alpha=64 on q,k,v,o,gate,up,down) trained over NF4 4-bit Gemma 3.

    trl SFTTrainer on the chat data set's training split: loss on the model turn only (its
    closing <end_of_turn> included), best-fit packing without cross-example attention, paged
    8-bit AdamW, gradient checkpointing, bf16. Runs in its own process (Dagster Pipes): logs,
    loss, learning rate, grad norm, tokens/s and peak memory stream into the run. Checkpoints
    every `save_steps`; a killed run resumes from the last complete one. Without a GPU the same
    code runs on the CPU with the recipe's small step budget.
    """
    from tr_gemma.training.distributed import unless_sharded
    from tr_gemma.training.memory import estimate_for_checkpoint
    from tr_gemma.training.recipe import load_recipe

    size = context.partition_key
    try:
        recipe = load_recipe(size, config.recipe_overrides())
    except PipelineInputError as exc:
        raise dg.Failure(f"qlora_adapter[{size}]: {exc}", allow_retries=False) from None
    manifest = read_base_model_manifest(artifacts, size)
    data_path = artifacts.folder(dg.AssetKey("gemma_chat_dataset")) / "data.parquet"
    if not data_path.is_file():
        raise dg.Failure(f"gemma_chat_dataset has not been materialized ({data_path} missing).", allow_retries=False)

    t = recipe.training
    estimate = estimate_for_checkpoint(manifest["path"], t.per_device_train_batch_size, t.max_length, recipe.lora.r,
                                       attention=t.attn_implementation,
                                       offloading=unless_sharded(t.activation_offloading, gpu.shards_training),
                                       fused_norms=unless_sharded(t.fused_norm_activation, gpu.shards_training),
                                       checkpointing=t.gradient_checkpointing,
                                       lora_dropout=recipe.lora.lora_dropout > 0,
                                       offloaded_layers=t.offloaded_layers,
                                       compact_masks=unless_sharded(t.compact_dropout_masks, gpu.shards_training),
                                       cuda_graphs=unless_sharded(t.cuda_graph_layers, gpu.shards_training),
                                       fused_lora=unless_sharded(t.fused_lora, gpu.shards_training),
                                       kept_outputs=unless_sharded(t.keep_projection_outputs, gpu.shards_training),
                                       kernel_dropout=unless_sharded(t.dropout_in_lora_kernels, gpu.shards_training),
                                       kept_projections=tuple(t.kept_projections),
                                       kernel_bits=t.kernel_dropout_bitmask)
    with gpu.reserved(context):  # before the preflight: free memory is only meaningful once the GPU is ours
        device = gpu.preflight(estimate.total, estimate.describe(), f"QLoRA of Gemma 3 {size}",
                               shardable_bytes=estimate.weights + estimate.lora)
        context.log.info(f"Memory estimate on GPU: {estimate.describe()}; training on {device}.")
        extras = {
            "recipe": recipe.model_dump(),
            "model_dir": manifest["path"],
            "data_path": str(data_path),
            "output_dir": str(artifacts.folder(context.asset_key, size)),
            "data_version": _file_digest(data_path),
            "base_model_revision": manifest["revision"],
            "device": device,
        }
        yield from gpu.run_module(context, "tr_gemma.training.pipes_main", extras).get_results()


def _file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
