"""QLoRA supervised fine-tuning of Gemma 3 on the chat data set (trl SFTTrainer + peft + bnb).

The same code runs on a CUDA GPU (the real target) and on the CPU (bitsandbytes NF4 works there
too, slowly), where the recipe's CPU smoke budget replaces the step count and sequence length.
"""

from __future__ import annotations

import hashlib
import json
import math
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tr_gemma.atomic_io import atomic_directory, atomic_file, disk_full
from tr_gemma.training.compiled_layers import compile_decoder_layers
from tr_gemma.training.distributed import Placement, per_device_accumulation, placement, unless_sharded
from tr_gemma.training.fsdp_adapter import save_adapter_from_full_state_dict
from tr_gemma.training.fused_elementwise import compiler_available, fuse_norms_and_activations
from tr_gemma.training.fused_lora import (compact_dropout_masks, dropout_in_lora_kernels, fuse_lora,
                                         kernel_dropout_bitmask)
from tr_gemma.training.fused_rope import fuse_qk_norm_rope
from tr_gemma.training.graphed_layers import graph_decoder_layers, peak_allocated_bytes
from tr_gemma.training.kept_outputs import keep_projection_outputs
from tr_gemma.training.layer_input_offload import offload_layer_inputs
from tr_gemma.training.recipe import Recipe


class TrainingPreflightError(RuntimeError):
    """The job cannot start (hardware, precision, model class); raised before weights load."""


@dataclass
class TrainingJob:
    recipe: Recipe
    model_dir: Path
    data_path: Path  # gemma_chat_dataset parquet: messages + split
    output_dir: Path  # the partition's artifact folder
    data_version: str = "unknown"
    base_model_revision: str = "unknown"
    device: str = "auto"  # auto | cuda | cpu

    def fingerprint(self) -> str:
        payload = json.dumps(
            {"recipe": self.recipe.model_dump(), "data": self.data_version, "base": self.base_model_revision},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class TrainingReport:
    adapter_dir: str
    device: str
    steps: int
    trainable_parameters: int
    total_parameters: int
    eval_loss_before: float
    eval_loss_after: float
    train_loss: float
    tokens_per_second: float
    peak_memory_gib: float
    wall_seconds: float
    resumed_from: str | None
    loss_history: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# The recipe's GPU-only kernel levers, applied in this order to the trainer's model, all off under
# FSDP: name -> (needs torch.compile, apply it to (model, recipe.training) and say what it did,
# why not under FSDP).
KERNEL_LEVERS = {
    "fused_norm_activation": (
        True, lambda model, t: "Fused kernels (torch.compile) for {} RMSNorms and {} GeGLU MLPs; the first step "
                            "includes their compile.".format(*fuse_norms_and_activations(model)),
        "not measured there"),
    "fused_rope": (
        True, lambda model, t: f"Fused q/k norm + rotary embedding (torch.compile) in {fuse_qk_norm_rope(model)} "
                            "attention layers.",
        "not measured there"),
    "fused_lora": (
        False, lambda model, t: f"Fused NF4 + LoRA function for {fuse_lora(model)} projections.",
        "its 4-bit weights are sharded there"),
    "compact_dropout_masks": (
        False, lambda model, t: f"Dropout masks of {compact_dropout_masks(model)} fused projections kept at one "
                                "bit per element.",
        "fused_lora is off there"),
    "dropout_in_lora_kernels": (
        False, lambda model, t: f"LoRA dropout of {dropout_in_lora_kernels(model)} fused projections drawn inside "
                                "the LoRA kernels (torch's masks, none kept).",
        "fused_lora is off there"),
    "kernel_dropout_bitmask": (
        False, lambda model, t: f"LoRA dropout masks of {kernel_dropout_bitmask(model)} fused projections stored at "
                                "one bit per element by the recompute's kernel, read by backward's.",
        "fused_lora is off there"),
    "keep_projection_outputs": (
        False, lambda model, t: f"{keep_projection_outputs(model, t.kept_projections, t.prefetch_kept_outputs)} "
                                f"decoder layers keep their {', '.join(t.kept_projections)} outputs for backward: the "
                                "checkpointed recompute skips those GEMMs"
                                + (" (moved to host memory by the checkpoint, fetched back a layer ahead)."
                                   if t.prefetch_kept_outputs else "."),
        "fused_lora is off there"),
    # it compiles the layers as the levers above left them
    "compiled_layers": (
        True, lambda model, t: f"{compile_decoder_layers(model)} decoder layers compiled whole (torch.compile); "
                               "the first step includes the compile.",
        "not measured there"),
    # last: it captures the layers as the levers above left them (compiled ones included)
    "cuda_graph_layers": (
        False, lambda model, t: f"{graph_decoder_layers(model, t.per_device_train_batch_size * t.max_length)} "
                                "decoder layers replayed as CUDA graphs (captured at the first step).",
        "not measured there"),
}


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingPreflightError("device 'cuda' requested but no CUDA GPU is visible")
    return requested


def peak_memory_gib(device: str) -> float:
    import torch

    if device == "cuda":  # CUDA graphs' private pools included
        return peak_allocated_bytes() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def conversations(data_path: Path, split: str) -> list[dict]:
    """prompt/completion pairs: trl then computes the loss on the completion only."""
    frame = pd.read_parquet(data_path)
    frame = frame[frame["split"] == split]
    return [
        {"prompt": [dict(messages[0])], "completion": [dict(messages[1])]}
        for messages in frame["messages"].tolist()
    ]


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    from tr_gemma.chat_format import gemma3_chat_template

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = gemma3_chat_template()  # pt checkpoints may ship none
    tokenizer.padding_side = "right"
    return tokenizer


def load_quantized_model(job: TrainingJob, device: str, place: Placement | None = None):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Gemma3ForCausalLM

    from tr_gemma.training import varlen_attention

    place = place or placement()
    fsdp = place.sharded
    q = job.recipe.quantization
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=q.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, q.bnb_4bit_compute_dtype),
        # FSDP shards parameters of one dtype: 4-bit weights are stored packed in bf16 tensors
        bnb_4bit_quant_storage=torch.bfloat16 if fsdp else torch.uint8,
    ) if q.load_in_4bit else None  # None: plain bf16 LoRA (a baseline, not QLoRA)
    if device != "cuda":
        device_map = {"": "cpu"}
    else:
        device_map = None if fsdp else {"": place.local_rank}  # FSDP places the shards itself
    attn = job.recipe.training.attn_implementation if device == "cuda" else "sdpa"
    if attn == varlen_attention.NAME:
        varlen_attention.register()
    model = AutoModelForCausalLM.from_pretrained(
        job.model_dir,
        quantization_config=quantization,
        dtype=torch.bfloat16,
        attn_implementation=attn,
        device_map=device_map,
        use_safetensors=True,  # never unpickle a .bin checkpoint (pickles can run code)
    )
    if not isinstance(model, Gemma3ForCausalLM):
        raise TrainingPreflightError(
            f"{job.model_dir} loads as {type(model).__name__}; the trainer needs the text-only "
            "Gemma3ForCausalLM (materialize base_model, which extracts it for 4B+)."
        )
    # Packed sequences are isolated from position_ids only without a KV cache.
    model.config.use_cache = False
    if attn == varlen_attention.NAME:
        varlen_attention.attach(model)
    if device == "cpu":
        _keep_cpu_4bit_layout(model)
    return model


def _keep_cpu_4bit_layout(model) -> None:
    """Stop bitsandbytes from repacking 4-bit weights at the first CPU inference call.

    On AVX512-BF16 CPUs, Linear4bit converts its weight to a CPU-only layout the first time it
    runs in eval mode (our held-out loss before training), and every later training step then
    takes a different matmul path with different rounding: a resumed run would no longer match
    an uninterrupted one. Keeping one layout keeps CPU runs reproducible.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def sft_config(job: TrainingJob, recipe: Recipe, checkpoints: Path, device: str, place: Placement | None = None):
    from trl import SFTConfig

    place = place or placement()
    t = recipe.training
    gpu = device == "cuda"
    return SFTConfig(
        output_dir=str(checkpoints),
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        max_length=t.max_length,
        packing=t.packing,
        packing_strategy="bfd",
        padding_free=t.packing,
        completion_only_loss=True,
        optim=t.optim,
        gradient_checkpointing=t.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=t.bf16 and device == "cuda",
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the total steps
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps,
        logging_nan_inf_filter=False,  # never hide a NaN; LossGuard stops the run instead
        save_strategy="steps",
        save_steps=t.save_steps,
        eval_strategy="no",
        seed=t.seed,
        data_seed=t.seed,
        include_num_input_tokens_seen="non_padding",
        report_to=[],
        dataloader_num_workers=0,
        dataset_num_proc=None,  # map in this process: a one-worker pool adds start-up and pickling, no speed
        use_cpu=device == "cpu",
        disable_tqdm=True,
        use_liger_kernel=t.use_liger_kernel and gpu,
        activation_offloading=gpu and unless_sharded(t.activation_offloading, place.sharded),
        # LoRA trains every adapter on every step, so DDP need not search for unused parameters
        ddp_find_unused_parameters=False if place.distributed else None,
        **_fsdp_arguments(place),
    )


def _fsdp_arguments(place: Placement) -> dict:
    """FSDP with QLoRA: decoder layers sharded across the GPUs (for sizes one card cannot hold)."""
    if not place.sharded:
        return {}
    return {
        "fsdp": True,
        "fsdp_config": {
            # FSDP1: accelerate's FSDP2 either leaves bitsandbytes' 4-bit weights unsharded or
            # gathers them as plain tensors without their quantization state; FSDP1 shards them.
            "version": 1,
            "reshard_after_forward": "full_shard",
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "transformer_layer_cls_to_wrap": ["Gemma3DecoderLayer"],
            "use_orig_params": False,  # frozen 4-bit and trainable LoRA tensors live in separate flat params
            # every rank loads the same 4-bit checkpoint on its own GPU with the same seed, so
            # there is nothing to broadcast from rank 0
            "cpu_ram_efficient_loading": False,
            "sync_module_states": False,
        },
    }


@dataclass
class PreparedTraining:
    """A trainer ready to run, with what `train` reports on afterwards."""

    trainer: object
    tokenizer: object
    recipe: Recipe  # the recipe as run (CPU budget, per-GPU accumulation applied)
    device: str
    place: Placement
    metrics: object
    resume_from: Path | None
    notes: list[str]
    has_eval: bool


def effective_recipe(job: TrainingJob, device: str, place: Placement, log: Callable[[str], None]) -> Recipe:
    """The job's recipe on this hardware: the CPU smoke budget, or accumulation split across GPUs."""
    recipe = job.recipe
    if device == "cpu":
        recipe = recipe.for_cpu()
        log(
            f"No CUDA GPU: training on the CPU with the recipe's smoke budget "
            f"({recipe.training.max_steps} steps of {recipe.training.max_length} tokens); "
            "bitsandbytes NF4 runs here, slowly. Use a GPU for a real run."
        )
    accumulation, note = per_device_accumulation(recipe.training.gradient_accumulation_steps, place.world_size)
    if note:
        log(note)
        training = recipe.training.model_copy(update={"gradient_accumulation_steps": accumulation})
        recipe = recipe.model_copy(update={"training": training})
    return recipe


def prepare_training(job: TrainingJob, emit: Callable[[dict], None], log: Callable[[str], None],
                     extra_callbacks: list | None = None) -> PreparedTraining:
    """Load data, the 4-bit model and the adapter config into a trainer (no step taken yet)."""
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig

    from tr_gemma.training.callbacks import LossGuard, MetricsStream
    from tr_gemma.training.resume import prepare_checkpoint_dir

    device = resolve_device(job.device)
    place = placement()
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingPreflightError("this GPU has no bf16 support; Gemma 3 cannot train in fp16")
    recipe = effective_recipe(job, device, place, log)
    kernels = {name: device == "cuda" and unless_sharded(getattr(recipe.training, name), place.sharded)
               for name in KERNEL_LEVERS}
    if kernels["cuda_graph_layers"]:
        _check_graph_recipe(recipe)
    if kernels["keep_projection_outputs"]:
        _check_kept_outputs_recipe(recipe)
    if kernels["dropout_in_lora_kernels"]:
        _check_kernel_dropout_recipe(recipe)
    if kernels["compact_dropout_masks"] and not kernels["fused_lora"]:
        raise TrainingPreflightError("training.compact_dropout_masks needs training.fused_lora: the masks it "
                                     "packs are the fused projections' own.")
    for name, (compiled, _, _) in KERNEL_LEVERS.items():
        if kernels[name] and compiled and not compiler_available():
            raise TrainingPreflightError(f"training.{name} needs torch.compile's Triton backend, which is not "
                                         f"installed; install triton or set {name}: false.")
    if kernels["compiled_layers"] and recipe.quantization.load_in_4bit and not kernels["fused_lora"]:
        raise TrainingPreflightError("training.compiled_layers needs training.fused_lora on 4-bit weights "
                                     "(bitsandbytes' own matmul cannot be compiled); set fused_lora: true.")

    checkpoints = job.output_dir / "checkpoints"
    with PartialState().main_process_first():  # rank 0 sets incomplete checkpoints aside first
        resume_from, notes = prepare_checkpoint_dir(checkpoints, job.fingerprint()) if place.is_main \
            else _resume_point(checkpoints)
    for note in notes:
        log(note)

    torch.manual_seed(recipe.training.seed)
    tokenizer = load_tokenizer(job.model_dir)
    train_rows = conversations(job.data_path, "train")
    eval_rows = conversations(job.data_path, "eval")
    if not train_rows:
        raise TrainingPreflightError(f"{job.data_path} has no training rows")
    model = load_quantized_model(replace_recipe(job, recipe), device, place)
    lora = recipe.lora
    peft_config = LoraConfig(
        r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
        target_modules=lora.target_modules, task_type="CAUSAL_LM", bias="none",
    )
    metrics = MetricsStream(emit, lambda: peak_memory_gib(device))
    trainer = _qlora_trainer(
        model=model,
        args=sft_config(job, recipe, checkpoints, device, place),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[LossGuard(), metrics, *(extra_callbacks or [])],
    )
    if place.sharded and not trainer.is_fsdp_enabled:
        log("FSDP was requested but accelerate runs this launch without it (FSDP needs CUDA GPUs): "
            "training data-parallel instead.")
    for name, (_, apply, why_not_sharded) in KERNEL_LEVERS.items():
        if kernels[name]:
            log(apply(trainer.model, recipe.training))
        elif device == "cuda" and getattr(recipe.training, name):
            log(f"training.{name} is off under FSDP ({why_not_sharded}).")
    if trainer.args.activation_offloading and recipe.training.offload_scope == "layer_inputs":
        log(offload_layer_inputs(trainer, recipe.training.offloaded_layers))
    return PreparedTraining(trainer, tokenizer, recipe, device, place, metrics, resume_from, notes, bool(eval_rows))


def _check_graph_recipe(recipe: Recipe) -> None:
    """cuda_graph_layers replays fixed shapes: packed documents kept apart by the varlen kernel's
    boundaries, and the checkpointed recompute that its backward graph holds."""
    from tr_gemma.training import varlen_attention

    t = recipe.training
    if t.attn_implementation != varlen_attention.NAME:
        raise TrainingPreflightError(f"training.cuda_graph_layers needs training.attn_implementation: "
                                     f"{varlen_attention.NAME} (it is {t.attn_implementation}): the graphs pad each "
                                     "micro-batch to a fixed size as one more packed document.")
    if not t.gradient_checkpointing:
        raise TrainingPreflightError("training.cuda_graph_layers needs training.gradient_checkpointing: true "
                                     "(its backward graph is the checkpointed recompute).")


def _check_kept_outputs_recipe(recipe: Recipe) -> None:
    """keep_projection_outputs is a checkpoint of eager layers whose o_proj and down_proj are the fused
    LoRA function (the only code path that can take a kept output)."""
    t = recipe.training
    if not t.fused_lora:
        raise TrainingPreflightError("training.keep_projection_outputs needs training.fused_lora: true (the "
                                     "fused projections are what take a kept output).")
    if not t.gradient_checkpointing:
        raise TrainingPreflightError("training.keep_projection_outputs needs training.gradient_checkpointing: "
                                     "true (it is a cheaper checkpointed recompute).")
    _refuse_compiled_or_graphed(t, "keep_projection_outputs", "cannot take a kept output")
    if t.prefetch_kept_outputs and not (t.activation_offloading and t.offloaded_layers is None):
        raise TrainingPreflightError("training.prefetch_kept_outputs moves every layer's kept tensors to host "
                                     "memory: it needs training.activation_offloading: true and no "
                                     "training.offloaded_layers count.")


def _refuse_compiled_or_graphed(t, lever: str, because: str) -> None:
    """Levers of the fused LoRA function's eager path: compiled and graphed layers run the
    projections as torch.library ops or captured kernels instead."""
    for other in ("compiled_layers", "cuda_graph_layers"):
        if getattr(t, other):
            raise TrainingPreflightError(f"training.{lever} cannot run with training.{other}: compiled and "
                                         f"graphed layers run the projections as ops or captured kernels that "
                                         f"{because}; set one of them false.")


def _check_kernel_dropout_recipe(recipe: Recipe) -> None:
    """dropout_in_lora_kernels lives in the fused LoRA function's eager path, and reads the CUDA
    generator on the host: no compiled graph or captured replay may run the projections."""
    t = recipe.training
    if not t.fused_lora:
        raise TrainingPreflightError("training.dropout_in_lora_kernels needs training.fused_lora: true (the "
                                     "fused projections' kernels are where the mask is drawn).")
    r = recipe.lora.r
    if r < 16 or r & (r - 1):
        raise TrainingPreflightError(f"training.dropout_in_lora_kernels needs lora.r a power of two of at least 16 "
                                     f"(its kernels' tile width), got {r}; set r to 16, 32, 64... or the lever false.")
    _refuse_compiled_or_graphed(t, "dropout_in_lora_kernels", "draw torch's dropout")


def replace_recipe(job: TrainingJob, recipe: Recipe) -> TrainingJob:
    from dataclasses import replace

    return replace(job, recipe=recipe)


def _resume_point(checkpoints: Path) -> tuple[Path | None, list[str]]:
    """Other ranks resume from the checkpoint rank 0 chose (it has set incomplete ones aside)."""
    from tr_gemma.training.resume import latest_complete

    return latest_complete(checkpoints), []


def train(job: TrainingJob, emit: Callable[[dict], None], log: Callable[[str], None]) -> TrainingReport:
    """Run (or resume) one QLoRA job and write the adapter atomically into `output_dir/adapter`."""
    started = time.perf_counter()
    prepared = prepare_training(job, emit, log)
    trainer, recipe, device = prepared.trainer, prepared.recipe, prepared.device
    lora, resume_from = recipe.lora, prepared.resume_from
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    log(f"LoRA r={lora.r} alpha={lora.lora_alpha}: {trainable:,} trainable of {total:,} parameters")

    eval_before = _eval_loss_before(trainer, job.output_dir, resume_from, log, prepared.place.is_main)
    if resume_from:
        log(f"Resuming from {resume_from.name}")
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if eval_before is None:  # measured by the trainer at step 0 (FSDP)
        eval_before = next((e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e), math.nan)
    eval_after = trainer.evaluate()["eval_loss"] if prepared.has_eval else math.nan

    adapter_dir = job.output_dir / "adapter"
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    speeds = sorted(prepared.metrics.speeds[1:] or prepared.metrics.speeds)  # the first step includes warm-up
    report = TrainingReport(
        adapter_dir=str(adapter_dir),
        device=_device_name(device, prepared.place, trainer.is_fsdp_enabled),
        steps=trainer.state.global_step,
        trainable_parameters=trainable,
        total_parameters=total,
        eval_loss_before=eval_before,
        eval_loss_after=eval_after,
        train_loss=float(result.training_loss),
        tokens_per_second=float(speeds[len(speeds) // 2]) if speeds else math.nan,
        peak_memory_gib=peak_memory_gib(device),
        wall_seconds=time.perf_counter() - started,
        resumed_from=resume_from.name if resume_from else None,
        loss_history=[{k: e[k] for k in ("step", "loss", "learning_rate", "grad_norm") if k in e} for e in history],
        notes=prepared.notes,
    )
    # Under FSDP the adapter is sharded: every rank joins the gather of its full state dict.
    state_dict = trainer.accelerator.get_state_dict(trainer.model) if trainer.is_fsdp_enabled else None
    if prepared.place.is_main:  # one writer; the other ranks only trained
        with atomic_directory(adapter_dir, replace=True) as staging:
            peft_model = trainer.accelerator.unwrap_model(trainer.model)
            if state_dict is None:
                peft_model.save_pretrained(staging, safe_serialization=True)
            else:
                save_adapter_from_full_state_dict(peft_model, state_dict, staging)
            prepared.tokenizer.save_pretrained(staging)
            (staging / "recipe.json").write_text(json.dumps(recipe.model_dump(), indent=2))
        with atomic_file(job.output_dir / "report.json") as staging:
            staging.write_text(json.dumps(report.__dict__, indent=2))
        shutil.rmtree(job.output_dir / "checkpoints", ignore_errors=True)  # done; the adapter is in place
    if prepared.place.distributed:
        trainer.accelerator.wait_for_everyone()
    release_optimizer_registry()
    return report


def release_optimizer_registry() -> None:
    """Forget the embedding modules transformers registered with bitsandbytes.

    Building an 8-bit optimizer, the Trainer registers every `nn.Embedding` with bitsandbytes'
    process-wide `GlobalOptimManager` (to keep their states in 32 bit), and the manager holds the
    module, a vocab x hidden tensor, for the life of the process: a second trainer in the same
    process (the benchmarks, the tests) would start with the first one's embedding still on the GPU.
    """
    import sys

    if "bitsandbytes" in sys.modules:
        from bitsandbytes.optim import GlobalOptimManager

        GlobalOptimManager.get_instance().initialize()


def _device_name(device: str, place: Placement, sharded: bool) -> str:
    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    if not place.distributed:
        return name
    return f"{place.world_size} x {name} ({'fsdp' if sharded else 'ddp'})"


def _qlora_trainer_class():
    from trl import SFTTrainer

    class QLoRATrainer(SFTTrainer):
        """SFTTrainer whose resumed runs keep the adapter dtype of a fresh run.

        trl casts QLoRA adapter weights to bf16; when resuming, transformers reloads them with
        PEFT's `load_adapter`, which upcasts bf16 adapters to fp32. The resumed run would then
        train in another precision and end with a different adapter. Cast back after loading.
        """

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            dtypes = {n: p.dtype for n, p in self.model.named_parameters() if p.requires_grad}
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            for name, param in self.model.named_parameters():
                if name in dtypes and param.dtype != dtypes[name]:
                    param.data = param.data.to(dtypes[name])

        def _save_checkpoint(self, model, trial):
            # A full disk mid-save leaves checkpoint-N incomplete: say so, not a bare errno 28.
            try:
                super()._save_checkpoint(model, trial)
            except OSError as exc:
                step = self.state.global_step
                full = disk_full(exc, Path(self.args.output_dir) / f"checkpoint-{step}", f"checkpoint-{step}",
                                 f"The earlier checkpoints are intact; the next run sets checkpoint-{step} aside "
                                 "and resumes from the last complete one.")
                if full is None:
                    raise
                raise full from exc

    return QLoRATrainer


def _qlora_trainer(**kwargs):
    return _qlora_trainer_class()(**kwargs)


def _eval_loss_before(trainer, output_dir: Path, resume_from: Path | None, log, is_main: bool = True) -> float | None:
    """Held-out loss of the untrained adapter (kept across a resume so it is measured once).

    None: FSDP wraps the model only when training starts (with the wrap policy that keeps the
    LoRA tensors apart from the 4-bit ones), so the trainer measures it at step 0 instead.
    """
    stored = output_dir / "checkpoints" / "eval_before.json"
    if resume_from and stored.is_file():
        return json.loads(stored.read_text())["eval_loss"]
    if trainer.eval_dataset is None:
        return math.nan
    if trainer.is_fsdp_enabled:
        trainer.args.eval_on_start = True
        trainer.add_callback(_eval_before_recorder(stored, log, is_main))
        return None
    loss = trainer.evaluate()["eval_loss"]
    _record_eval_before(stored, loss, log, is_main)
    return loss


def _record_eval_before(stored: Path, loss: float, log, is_main: bool) -> None:
    log(f"Eval loss before training: {loss:.4f}")
    if is_main:
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps({"eval_loss": loss}))


def _eval_before_recorder(stored: Path, log, is_main: bool):
    """A callback that keeps the step-0 evaluation as the run's 'before' loss (for a resume)."""
    from transformers import TrainerCallback

    class EvalBeforeRecorder(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if state.global_step == 0 and metrics and "eval_loss" in metrics:
                _record_eval_before(stored, metrics["eval_loss"], log, is_main)

    return EvalBeforeRecorder()
