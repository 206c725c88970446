"""Training recipes: one YAML file per Gemma 3 size, validated, with per-run overrides."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tr_gemma.errors import PipelineInputError
from tr_gemma.training.kept_outputs import KEPT_PROJECTIONS

RECIPES_DIR = Path(os.environ.get("TR_GEMMA_RECIPES", Path(__file__).resolve().parents[2] / "recipes"))
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a key is an error, not a silent default


class Quantization(_Strict):
    load_in_4bit: bool = True
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    bnb_4bit_compute_dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"

    @field_validator("bnb_4bit_compute_dtype")
    @classmethod
    def _no_fp16(cls, value: str) -> str:
        if value == "float16":
            raise ValueError("float16 is refused: Gemma 3 activations overflow in fp16; use bfloat16")
        return value


class Lora(_Strict):
    r: int = Field(32, gt=0)
    lora_alpha: int = Field(64, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS))

    @field_validator("target_modules")
    @classmethod
    def _known_targets(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(LORA_TARGETS))
        if unknown or not value:
            raise ValueError(f"unknown LoRA target(s) {unknown}; choose from {list(LORA_TARGETS)}")
        return value


# levers that work only on top of another: (lever, the lever it needs, what it does with it)
LEVERS_ON_TOP = (("prefetch_kept_outputs", "keep_projection_outputs", "moves what keep_projection_outputs keeps"),
                 ("kernel_dropout_bitmask", "dropout_in_lora_kernels", "stores the masks the LoRA kernels draw"))


class Training(_Strict):
    per_device_train_batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(4, gt=0)
    learning_rate: float = Field(2e-4, gt=0, le=1)
    num_train_epochs: float = Field(1, gt=0)
    max_steps: int = -1
    max_length: int = Field(4096, gt=0)
    packing: bool = True
    optim: str = "paged_adamw_8bit"
    gradient_checkpointing: bool = True
    bf16: bool = True
    fp16: bool = False
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    logging_steps: int = Field(1, gt=0)
    save_steps: int = Field(50, gt=0)
    seed: int = 42
    # Speed and memory levers (measured one at a time in docs/benchmarks.md); GPU only.
    attn_implementation: Literal["sdpa", "packed_varlen", "flex_attention", "eager"] = "sdpa"
    use_liger_kernel: bool = False  # Liger's RMSNorm, RoPE and GeGLU kernels (the loss stays trl's fused LM head)
    activation_offloading: bool = False  # checkpointed activations kept in host memory until backward
    # what offloading moves: every saved tensor (trl's context as it ships) or only decoder-layer
    # inputs, of `offloaded_layers` layers spread over the depth (None: all)
    offload_scope: Literal["all_saved_tensors", "layer_inputs"] = "all_saved_tensors"
    offloaded_layers: int | None = Field(None, ge=0)
    fused_norm_activation: bool = False  # RMSNorm and GeGLU as torch.compile-generated fused kernels
    fused_lora: bool = False  # NF4 matmul + LoRA as one autograd function (no clone, scaling and add kernels)
    fused_rope: bool = False  # q/k RMSNorm + rotary embedding as one torch.compile-generated kernel
    compiled_layers: bool = False  # each decoder layer one torch.compile graph (needs fused_lora on 4-bit)
    # each decoder layer's forward and checkpointed backward replayed as CUDA graphs (needs packed_varlen)
    cuda_graph_layers: bool = False
    # LoRA dropout masks kept at one bit per element until backward (needs fused_lora): memory for time
    compact_dropout_masks: bool = False
    # projection outputs kept for backward (offloaded with the layer input), so the checkpointed
    # recompute skips their NF4 GEMMs (needs fused_lora; not with compiled layers or graphs)
    keep_projection_outputs: bool = False
    # which projections' outputs it keeps: o_proj and down_proj cost only the layer's own traffic;
    # gate_proj and up_proj (4 x intermediate bytes a token each way) spare the recompute's largest GEMMs
    kept_projections: list[Literal["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]] = \
        Field(default_factory=lambda: list(KEPT_PROJECTIONS), min_length=1)
    # what keep_projection_outputs keeps goes to host memory through the checkpoint itself, fetched
    # back a layer ahead of backward (trl's hooks fetch on demand, the GPU waiting); needs activation_offloading
    prefetch_kept_outputs: bool = False
    # LoRA dropout drawn inside Triton LoRA kernels, the same masks as torch's dropout kernel
    # (needs fused_lora and dropout; not with compiled layers or graphs): no dropped copies, no masks kept
    dropout_in_lora_kernels: bool = False
    # with it, the recompute's LoRA kernel stores each mask at one bit per element and backward's two
    # kernels read it instead of drawing it again (tokens x width / 8 bytes through the layer's backward)
    kernel_dropout_bitmask: bool = False

    @model_validator(mode="after")
    def _layer_count_needs_layer_scope(self) -> "Training":
        if self.offloaded_layers is not None and self.offload_scope != "layer_inputs":
            raise ValueError("training.offloaded_layers counts decoder-layer inputs; it needs "
                             "training.offload_scope: layer_inputs (trl's scope moves every saved tensor)")
        return self

    @model_validator(mode="after")
    def _levers_on_top_of_others(self) -> "Training":
        for lever, needed, what in LEVERS_ON_TOP:
            if getattr(self, lever) and not getattr(self, needed):
                raise ValueError(f"training.{lever} {what}; it needs training.{needed}: true")
        return self

    @field_validator("kept_projections")
    @classmethod
    def _each_projection_once(cls, value: list) -> list:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"training.kept_projections names {', '.join(repeated)} more than once")
        return value

    @field_validator("fp16")
    @classmethod
    def _no_fp16(cls, value: bool) -> bool:
        if value:
            raise ValueError("fp16 training is refused: Gemma 3 overflows in fp16 (NaN loss); use bf16")
        return value


class CpuBudget(_Strict):
    max_steps: int = Field(30, gt=0)
    max_length: int = Field(512, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    per_device_train_batch_size: int = Field(2, gt=0)


class Recipe(_Strict):
    model_size: str
    context_length: int = Field(gt=0)
    quantization: Quantization = Quantization()
    lora: Lora = Lora()
    training: Training = Training()
    cpu: CpuBudget = CpuBudget()

    @model_validator(mode="after")
    def _fits_context(self) -> "Recipe":
        if self.training.max_length > self.context_length:
            raise ValueError(
                f"training.max_length {self.training.max_length} exceeds the {self.model_size} "
                f"context length {self.context_length}"
            )
        return self

    def for_cpu(self) -> "Recipe":
        """The same recipe on the CPU smoke budget (few steps, short sequences)."""
        training = self.training.model_copy(update=self.cpu.model_dump())
        return self.model_copy(update={"training": training})


def recipes_digest() -> str:
    """Short hash of every recipe file: part of the training asset's code version, so editing a
    recipe marks the adapters stale in the UI."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def recipe_path(size: str) -> Path:
    return RECIPES_DIR / f"gemma-3-{size}.yaml"


def load_recipe(size: str, overrides: dict | None = None) -> Recipe:
    """The recipe of `size` with `overrides` (nested dict, same keys as the YAML) applied."""
    path = recipe_path(size)
    if not path.is_file():
        raise PipelineInputError(f"no recipe for size '{size}' ({path} missing)")
    base = yaml.safe_load(path.read_text(encoding="utf-8"))
    return parse_recipe(_deep_merge(base, overrides or {}), source=str(path))


def parse_recipe(values: dict, source: str) -> Recipe:
    try:
        return Recipe.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'recipe'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise PipelineInputError(f"invalid training recipe ({source}): {problems}") from None


def _deep_merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
