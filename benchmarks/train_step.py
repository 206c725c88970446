"""Training-step speed and memory: the project's trainer against a plain HF + PEFT + bnb baseline.

For one Gemma 3 text shape (random weights: same kernels and memory as real ones), in one process
and on the same packed batches of the project's chat data:

- baseline: Gemma3ForCausalLM in NF4 double-quant + PEFT LoRA r=32 on the 7 projections, SDPA,
  the model's standard loss over full logits, gradient checkpointing, bf16 autocast, paged 8-bit
  AdamW, 2 x 4096 dense rows, accumulation 4, a hand-written loop;
- project variants: `tr_gemma.training.sft.prepare_training` + `trainer.train()` (trl SFTTrainer,
  the recipe of that size) with recipe overrides, one lever at a time.

Reports per stack: tokens/s (median of the timed optimizer steps after warm-up), MFU (4 x matmul
parameters x tokens/s over this card's measured bf16 GEMM peak), peak memory allocated, and the
ratio to the baseline. 27B may run with fewer layers (--layers) and be extrapolated by
benchmarks/train_step_report.py.

    python -m benchmarks.train_step --size 4b --variants baseline,project,project+liger --out r.json
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tarfile
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.gemma3_shapes import matmul_parameters, text_config

LEVERS = {  # recipe overrides, one per lever of the project stack
    "liger": {"training": {"use_liger_kernel": True}},
    "flex": {"training": {"attn_implementation": "flex_attention"}},
    "varlen": {"training": {"attn_implementation": "packed_varlen"}},
    "sdpa": {"training": {"attn_implementation": "sdpa"}},  # the 4B+ recipes default to varlen
    "offload": {"training": {"activation_offloading": True}},
    "fused": {"training": {"fused_norm_activation": True}},
    "lora": {"training": {"fused_lora": True}},
    "rope": {"training": {"fused_rope": True}},
    "norope": {"training": {"fused_rope": False}},
    "compiled": {"training": {"compiled_layers": True}},
    "nocompiled": {"training": {"compiled_layers": False}},
    "graphs": {"training": {"cuda_graph_layers": True}},
    "compact": {"training": {"compact_dropout_masks": True}},
    "nocompact": {"training": {"compact_dropout_masks": False}},
    "nographs": {"training": {"cuda_graph_layers": False}},
    "kept": {"training": {"keep_projection_outputs": True}},  # o_proj/down_proj outputs kept: recompute skips them
    "nokept": {"training": {"keep_projection_outputs": False}},
    # the GeGLU's inputs kept too: the recompute skips its two largest GEMMs
    "keptmlp": {"training": {"keep_projection_outputs": True,
                             "kept_projections": ["o_proj", "gate_proj", "up_proj", "down_proj"]}},
    "keptup": {"training": {"keep_projection_outputs": True, "kept_projections": ["o_proj", "up_proj", "down_proj"]}},
    # the kept tensors moved to host memory by the checkpoint, fetched back a layer ahead
    "prefetch": {"training": {"prefetch_kept_outputs": True}},
    "noprefetch": {"training": {"prefetch_kept_outputs": False}},
    "keptall": {"training": {"keep_projection_outputs": True, "kept_projections": [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}},
    "kdrop": {"training": {"dropout_in_lora_kernels": True}},  # dropout drawn inside the LoRA kernels
    "nokdrop": {"training": {"dropout_in_lora_kernels": False}},
    # the recompute's kernel stores each mask as bits; backward's kernels read them, not draw again
    "kbits": {"training": {"dropout_in_lora_kernels": True, "kernel_dropout_bitmask": True}},
    "nokbits": {"training": {"kernel_dropout_bitmask": False}},
    "nooffload": {"training": {"activation_offloading": False}},
    "inputs": {"training": {"activation_offloading": True, "offload_scope": "layer_inputs"}},  # layer inputs only
    "alltensors": {"training": {"offload_scope": "all_saved_tensors"}},  # trl's offloading as it ships
    "peftlora": {"training": {"fused_lora": False}},  # PEFT's own LoRA forward (before fused_lora)
    "nodropout": {"lora": {"lora_dropout": 0.0}},  # recipe-wide: run "baseline+nodropout" to compare alike
    # no recompute: every layer's activations stay on the GPU (offloading them all would be PCIe-bound)
    "nockpt": {"training": {"gradient_checkpointing": False, "activation_offloading": False}},
    "again": {},  # the recipe unchanged: a second run of it, e.g. under the profiler
    "nopack": {"training": {"packing": False}},
}


def dropout_kept(training) -> str:
    """What the fused LoRA keeps of its dropout for backward (the memory planner's `dropout_kept`)."""
    if not training.fused_lora:
        return "copy"
    if training.dropout_in_lora_kernels:
        return "bitmask" if training.kernel_dropout_bitmask else "none"
    return "bitmask" if training.compact_dropout_masks else "mask"


def lever_overrides(lever: str) -> dict:
    """A lever's recipe overrides; "inputsN" offloads the inputs of N decoder layers only."""
    if lever.startswith("inputs") and lever[len("inputs"):].isdigit():
        return {"training": {"activation_offloading": True, "offload_scope": "layer_inputs",
                             "offloaded_layers": int(lever[len("inputs"):])}}
    return LEVERS[lever]


RECIPE_WIDE = ("nodropout",)  # levers that change the recipe itself: the baseline gets them too


def recipe_wide_levers(variant: str) -> list[str]:
    return [lever for lever in variant.split("+")[1:] if lever in RECIPE_WIDE]


def same_recipe_baseline(variant: str, results: dict) -> str:
    """The baseline run on the same recipe as `variant` ("baseline+nodropout" for a project
    variant without LoRA dropout, when it was run), else the plain "baseline"."""
    name = "+".join(["baseline", *recipe_wide_levers(variant)])
    return name if name in results else "baseline"


def scratch_folder(tokenizer: str) -> tuple[Path, Path]:
    """A scratch folder (in memory where possible) and the Gemma 3 tokenizer folder, unpacked
    there when given as the .tar.xz carried to the GPU machine."""
    work = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    tokenizer_dir = Path(tokenizer)
    if tokenizer_dir.suffix == ".xz":
        with tarfile.open(tokenizer_dir) as archive:
            archive.extractall(work / "tok", filter="data")
        tokenizer_dir = next((work / "tok").iterdir())
    return work, tokenizer_dir


def measure_matmul_peak(device: str) -> float:
    """bf16 TFLOP/s of an 8192^3 GEMM on this card (the MFU denominator)."""
    import torch

    if device != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start, runs = time.perf_counter(), 30
    for _ in range(runs):
        a @ b
    torch.cuda.synchronize()
    peak = 2 * 8192**3 * runs / (time.perf_counter() - start) / 1e12
    del a, b
    torch.cuda.empty_cache()
    return peak


def random_checkpoint(folder: Path, size: str, layers: int | None, tokenizer_dir: Path, device: str) -> dict:
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = text_config(size, layers)
    torch.manual_seed(0)
    with torch.device(device):
        model = Gemma3ForCausalLM(Gemma3TextConfig(**config)).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    for file in tokenizer_dir.iterdir():
        shutil.copy2(file, folder / file.name)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return config


class StepTimer:
    """Wall time and tokens of each optimizer step (synchronised, so GPU work is counted)."""

    def __init__(self, device: str):
        from transformers import TrainerCallback

        timer = self
        self.device, self.times, self.tokens = device, [], []

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer._sync()
                timer._start, timer._seen = time.perf_counter(), state.num_input_tokens_seen

            def on_step_end(self, args, state, control, **kwargs):
                timer._sync()
                timer.times.append(time.perf_counter() - timer._start)
                timer.tokens.append(state.num_input_tokens_seen - timer._seen)

        self.callback = _Callback()

    def _sync(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()


class StepProfiler:
    """torch.profiler over the optimizer steps after the warm-up (to the end of training)."""

    def __init__(self, warmup: int):
        from torch.profiler import ProfilerActivity, profile
        from transformers import TrainerCallback

        self.profile = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
        outer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == warmup:
                    outer.profile.start()

            def on_train_end(self, args, state, control, **kwargs):
                if state.global_step > warmup:
                    outer.profile.stop()

        self.callback = _Callback()

    def table(self) -> str:
        return self.profile.key_averages().table(sort_by="cuda_time_total", row_limit=30)

    def events(self):
        return self.profile.events()


def summarize(times: list[float], tokens: list[int], warmup: int) -> dict:
    speeds = [n / t for n, t in zip(tokens[warmup:], times[warmup:]) if t > 0]
    return {
        "tokens_per_second": statistics.median(speeds) if speeds else float("nan"),
        "step_seconds": [round(t, 4) for t in times],
        "step_tokens": tokens,
    }


def peak_gib(device: str, held_before: float = 0.0) -> float:
    """Peak allocated by this stack: the process peak less what was held before it started, with
    what CUDA graphs hold in their private pools (their replays use it uncounted)."""
    from tr_gemma.training.graphed_layers import peak_allocated_bytes

    if device != "cuda":
        return float("nan")
    return peak_allocated_bytes() / 2**30 - held_before


def graph_pool_gib() -> dict:
    """What CUDA graphs hold in their pool, and the allocator's peak up to their capture."""
    from tr_gemma.training import graphed_layers

    return {"pool": graphed_layers.graph_pool_bytes() / 2**30,
            "capture_peak": graphed_layers.capture_peak_bytes() / 2**30}


def allocated_gib(device: str) -> float:
    """Allocated now. Variants run one after another in one process; whatever an earlier one
    left allocated (until 2026-11-27 its embedding, held by bitsandbytes: docs/benchmarks.md) is
    not this variant's, so its peak is measured above what was held when it started."""
    import torch

    gc.collect()
    return torch.cuda.memory_allocated() / 2**30 if device == "cuda" else 0.0


def reset_peak(device: str) -> None:
    import torch

    from tr_gemma.training.graphed_layers import forget_capture_peak

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        forget_capture_peak()


def dense_rows(batch: dict, rows: int, length: int, pad_id: int) -> tuple:
    """A padding-free packed micro-batch laid out as the baseline's dense rows x length."""
    import torch

    ids = batch["input_ids"].reshape(-1)[: rows * length]
    labels = batch["labels"].reshape(-1)[: rows * length]
    pad = rows * length - ids.numel()
    ids = torch.cat([ids, ids.new_full((pad,), pad_id)])
    labels = torch.cat([labels, labels.new_full((pad,), -100)])
    return ids.view(rows, length), labels.view(rows, length), rows * length - pad


def run_baseline(model_dir: Path, recipe, batches: list, warmup: int, steps: int, device: str,
                 fused_ce: bool = False) -> dict:
    """Plain HF + PEFT + bitsandbytes QLoRA loop, standard loss (or trl's fused LM head)."""
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, Gemma3ForCausalLM

    reset_peak(device)
    held_before = allocated_gib(device)
    model = Gemma3ForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation="sdpa",
        device_map={"": 0} if device == "cuda" else {"": "cpu"},
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16),
    )
    model.config.use_cache = False
    if fused_ce:
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(model)
    lora = recipe.lora
    model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
                                             target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:  # as trl does for QLoRA
        p.data = p.data.to(torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.train()
    optimizer = bnb.optim.PagedAdamW8bit(params, lr=recipe.training.learning_rate)
    accumulation = recipe.training.gradient_accumulation_steps
    reset_peak(device)
    timer = StepTimer(device)
    times, tokens = [], []
    for step in range(warmup + steps):
        timer._sync()
        start, seen = time.perf_counter(), 0
        for micro in batches[step * accumulation:(step + 1) * accumulation]:
            ids, labels, real = (t.to(device) if hasattr(t, "to") else t for t in micro)
            with torch.autocast(device, dtype=torch.bfloat16):
                if fused_ce:
                    loss = model(input_ids=ids, labels=labels, fused_lm_head=True).loss
                else:
                    loss = model(input_ids=ids, labels=labels).loss
            (loss / accumulation).backward()
            seen += real
        torch.nn.utils.clip_grad_norm_(params, recipe.training.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer._sync()
        times.append(time.perf_counter() - start)
        tokens.append(seen)
    result = {**summarize(times, tokens, warmup), "peak_memory_allocated_gib": peak_gib(device, held_before),
              "held_before_gib": held_before, "last_loss": float(loss)}
    del model, optimizer, params
    reset_peak(device)
    return result


def run_project(job, warmup: int, steps: int, device: str, want_batches: int = 0, profile: bool = False) -> tuple[dict, list]:
    """The project's own trainer path on `job` (one variant); optionally hands back its batches."""
    from tr_gemma.training.sft import prepare_training, release_optimizer_registry

    reset_peak(device)
    held_before = allocated_gib(device)
    timer = StepTimer(device)
    prepared = prepare_training(job, lambda metrics: None, print, extra_callbacks=[timer.callback])
    trainer, recipe = prepared.trainer, prepared.recipe
    batches = []
    if want_batches:
        pad_id = prepared.tokenizer.pad_token_id
        t = recipe.training
        for batch in trainer.get_train_dataloader():
            batches.append(dense_rows(batch, t.per_device_train_batch_size, t.max_length, pad_id))
            if len(batches) >= want_batches:
                break
    reset_peak(device)
    profiler = StepProfiler(warmup) if profile and device == "cuda" else None
    if profiler:
        trainer.add_callback(profiler.callback)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    result = {**summarize(timer.times, timer.tokens, warmup), "peak_memory_allocated_gib": peak_gib(device, held_before),
              "graph_pool_gib": graph_pool_gib(), "held_before_gib": held_before,
              # what the fused LoRA keeps of its dropout for backward (the memory planner's input)
              "lora_dropout_kept": dropout_kept(recipe.training), "last_loss": losses[-1] if losses else None, "recipe_training": recipe.training.model_dump(),
              "recipe_lora": recipe.lora.model_dump()}
    if profiler:  # the timed steps only: the warm-up's compiles and captures would swamp the GPU's share
        result["profile"] = profiler.table()
        result["kernel_breakdown"] = kernel_breakdown(profiler.events(), sum(timer.times[warmup:]))
        result["profiled_steps"] = len(timer.times) - warmup
    del prepared, trainer
    release_optimizer_registry()
    reset_peak(device)
    return result, batches


KERNEL_KINDS = (  # first match wins; names of the kernels on an H100 with torch 2.11, bnb 0.50
    ("NF4 dequantize", ("dequantize",)),
    ("8-bit optimizer", ("koptimizer", "kpreconditionoptimizer")),
    ("attention", ("flash", "fmha", "attention", "sdpa", "cudnn")),
    ("GEMM", ("gemm", "cutlass", "xmma", "nvjet", "cublas", "splitk")),
    ("softmax / loss", ("softmax", "nll_loss", "cross_entropy", "logsumexp")),
    ("host copies", ("memcpy",)),
    ("element-wise and reductions", ("elementwise", "vectorized", "reduce", "triton", "unrolled", "index",
                                     "cat", "copy", "fill", "memset", "dropout", "bernoulli", "gelu", "mul", "add")),
)


def kernel_breakdown(events, wall_seconds: float) -> dict:
    """GPU time per kind of kernel from a torch.profiler trace, against the wall time it covered.

    Operator tables attribute the checkpointed forward recompute to whichever backward node first
    unpacks a saved tensor, so kernel names are the honest unit for where GPU time goes.
    """
    from torch.autograd import DeviceType

    by_kind: dict[str, float] = {}
    by_name: dict[str, float] = {}
    for event in events:
        # user annotations on the GPU timeline (e.g. "Optimizer.step#AdamW.step") span kernels counted on their own
        if event.device_type != DeviceType.CUDA or getattr(event, "is_user_annotation", False):
            continue
        seconds = event.time_range.elapsed_us() / 1e6
        name = event.name.lower()
        kind = next((k for k, keys in KERNEL_KINDS if any(key in name for key in keys)), "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
        by_name[event.name[:120]] = by_name.get(event.name[:120], 0.0) + seconds
    busy = sum(by_kind.values())
    return {
        "wall_seconds": wall_seconds,
        "gpu_kernel_seconds": busy,  # summed over streams: copies on the offloading stream overlap compute
        "by_kind_seconds": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "top_kernels_seconds": dict(sorted(by_name.items(), key=lambda kv: -kv[1])[:25]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", required=True, choices=["270m", "1b", "4b", "12b", "27b", "tiny"])
    parser.add_argument("--layers", type=int, default=0, help="fewer layers (27B), extrapolated in the report")
    parser.add_argument("--variants", default="baseline,project")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=0, help="override the recipe's 4096")
    parser.add_argument("--batch", type=int, default=0, help="override the recipe's per-device batch 2")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--tokenizer", required=True, help="Gemma 3 tokenizer folder or .tar.xz holding one")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--profile", default="", help="variant to profile with torch.profiler")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from benchmarks.gpu_qlora import build_chat_parquet
    from tr_gemma.training.recipe import load_recipe
    from tr_gemma.training.sft import TrainingJob

    work, tokenizer_dir = scratch_folder(args.tokenizer)
    started = time.perf_counter()
    peak_tflops = measure_matmul_peak(args.device)
    config = random_checkpoint(work / "model", args.size, args.layers or None, tokenizer_dir, args.device)
    data = build_chat_parquet(work, args.rows, None)
    recipe_size = "1b" if args.size == "tiny" else args.size
    overrides_base = {"training": {k: v for k, v in (("max_length", args.max_length),
                                                     ("per_device_train_batch_size", args.batch)) if v}}
    variants = args.variants.split(",")
    results: dict[str, dict] = {}
    baseline_batches: list = []
    steps_needed = args.warmup + args.steps

    def job_for(variant: str, folder: str) -> TrainingJob:
        overrides = json.loads(json.dumps(overrides_base))
        overrides["training"].update(max_steps=steps_needed, save_steps=100_000, logging_steps=1)
        # CPU smoke of this script: the recipe's CPU budget would replace the step count
        overrides["cpu"] = {"max_steps": steps_needed, "max_length": args.max_length or 128,
                            "per_device_train_batch_size": args.batch or 2, "gradient_accumulation_steps": 1}
        for lever in variant.split("+")[1:]:
            for section, values in lever_overrides(lever).items():
                overrides.setdefault(section, {}).update(values)
        recipe = load_recipe(recipe_size, overrides)
        return TrainingJob(recipe, work / "model", data, work / folder, device=args.device)

    def baseline_recipe(variant: str):
        """The recipe a baseline variant trains on: the size's recipe plus its recipe-wide levers."""
        recipe = job_for("+".join(["project", *recipe_wide_levers(variant)]), "unused").recipe
        return recipe.for_cpu() if args.device == "cpu" else recipe

    base_recipe = baseline_recipe("project")
    accumulation = base_recipe.training.gradient_accumulation_steps
    project_variants = [v for v in variants if v.startswith("project")]
    # Liger patches transformers' Gemma 3 classes process-wide: its variants run last.
    project_variants.sort(key=lambda v: "liger" in v)
    need_batches = any(v.startswith("baseline") for v in variants)
    def write_output() -> None:
        """Rewritten after every variant, so a run stopped at its time limit keeps what it measured."""
        n_matmul = matmul_parameters(config)
        for name, result in results.items():
            speed = result.get("tokens_per_second")
            if speed:
                base = same_recipe_baseline(name, results)
                reference = results.get(base, {}).get("tokens_per_second")
                result["mfu"] = 4 * n_matmul * speed / (peak_tflops * 1e12) if peak_tflops == peak_tflops else None
                result["ratio_to_baseline"] = speed / reference if reference else None
                result["baseline_for_ratio"] = base
        output = {
            "benchmark": "benchmarks.train_step",
            "size": args.size,
            "layers": config["num_hidden_layers"],
            "full_layers": text_config(args.size)["num_hidden_layers"],
            "config": config,
            "matmul_parameters": n_matmul,
            "measured_bf16_matmul_tflops": peak_tflops,
            "batch": base_recipe.training.per_device_train_batch_size,
            "max_length": base_recipe.training.max_length,
            "gradient_accumulation_steps": accumulation,
            "lora_r": base_recipe.lora.r,
            "warmup_steps": args.warmup,
            "timed_steps": args.steps,
            "data": "project chat data set (embedded sample, varied to size), trl best-fit packing",
            "results": results,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
            "torch": torch.__version__,
            "host": platform.node(),
            "date": date.today().isoformat(),
            "wall_seconds": time.perf_counter() - started,
        }
        Path(args.out).write_text(json.dumps(output, indent=2, default=float))

    for variant in project_variants:
        job = job_for(variant, variant)
        want = steps_needed * accumulation if need_batches and not baseline_batches else 0
        try:
            result, batches = run_project(job, args.warmup, args.steps, args.device, want, args.profile == variant)
        except Exception as exc:  # one failing lever must not lose the others' numbers
            result, batches = {"error": f"{type(exc).__name__}: {exc}"[:2000]}, []
            reset_peak(args.device)
        baseline_batches = baseline_batches or batches
        results[variant] = result
        print(variant, json.dumps({k: v for k, v in result.items() if k not in ("profile", "recipe_training", "recipe_lora")}), flush=True)
        write_output()
        if baseline_batches and any(v.startswith("baseline") for v in variants) and "baseline" not in results:
            for base in (v for v in variants if v.startswith("baseline")):  # before any Liger patching
                try:
                    recipe = baseline_recipe(base)
                    results[base] = run_baseline(work / "model", recipe, baseline_batches, args.warmup,
                                                 args.steps, args.device, fused_ce="fused_ce" in base)
                except Exception as exc:
                    results[base] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                    reset_peak(args.device)
                print(base, json.dumps(results[base]), flush=True)
                write_output()

    write_output()


if __name__ == "__main__":
    main()
