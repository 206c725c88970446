"""Data-parallel scaling of the project's trainer: the same job on 1 and N GPUs of one host.

The parent builds one random-weight checkpoint of a real Gemma 3 shape and the chat data, then
launches `tr_gemma.training.sft.train` through torchrun exactly as the GPU resource does
(`python -m torch.distributed.run --standalone --nproc_per_node=N`), once per GPU count. The
global batch is the recipe's on every count (accumulation is divided by the GPU count), so the
loss curves are comparable step for step.

    python -m benchmarks.multi_gpu --size 4b --gpus 1,2 --steps 8 --tokenizer tok.tar.xz --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def worker(args) -> None:
    """One rank of a torchrun launch: the project's own `train`, rank 0 writes the report."""
    from tr_gemma.training.distributed import placement
    from tr_gemma.training.recipe import load_recipe
    from tr_gemma.training.sft import TrainingJob, train

    recipe_size = "1b" if args.size == "tiny" else args.size
    overrides = {"training": {"max_steps": args.steps, "save_steps": 100_000, "logging_steps": 1},
                 "cpu": {"max_steps": args.steps, "max_length": 128, "gradient_accumulation_steps": 2}}
    recipe = load_recipe(recipe_size, overrides)
    job = TrainingJob(recipe, Path(args.model_dir), Path(args.data), Path(args.work) / f"gpus{args.gpus_now}",
                      device=args.device)
    started = time.perf_counter()
    report = train(job, lambda metrics: None, lambda message: None)
    if placement().is_main:
        Path(args.part).write_text(json.dumps({**report.__dict__, "launch_seconds": time.perf_counter() - started},
                                              default=float))


def adapter_summary(adapter_dir: Path) -> dict:
    """What rank 0 wrote: full (unsharded) LoRA matrices of rank r, and trained B matrices (B starts at 0)."""
    from safetensors.torch import load_file

    r = json.loads((adapter_dir / "adapter_config.json").read_text())["r"]
    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    a = [t for k, t in tensors.items() if "lora_A" in k]
    b = [t for k, t in tensors.items() if "lora_B" in k]
    return {"tensors": len(tensors), "all_rank_r_matrices": all(t.dim() == 2 and r in t.shape for t in tensors.values()),
            "lora_A": len(a), "lora_B": len(b), "lora_B_nonzero": sum(bool(t.abs().sum() > 0) for t in b)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="4b")
    parser.add_argument("--gpus", default="1,2")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--tokenizer", default="")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="")
    parser.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--data", default="")
    parser.add_argument("--work", default="")
    parser.add_argument("--part", default="")
    parser.add_argument("--gpus-now", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from benchmarks.gpu_qlora import build_chat_parquet
    from benchmarks.train_step import random_checkpoint, scratch_folder

    work, tokenizer_dir = scratch_folder(args.tokenizer)
    config = random_checkpoint(work / "model", args.size, None, tokenizer_dir, args.device)
    data = build_chat_parquet(work, args.rows, None)
    runs = {}
    for count in (int(n) for n in args.gpus.split(",")):
        part = work / f"part{count}.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={count}",
                   "-m", "benchmarks.multi_gpu", "--worker", "--size", args.size, "--steps", str(args.steps),
                   "--device", args.device, "--model-dir", str(work / "model"), "--data", str(data),
                   "--work", str(work), "--part", str(part), "--gpus-now", str(count)]
        env = {**os.environ, "TR_GEMMA_DISTRIBUTED_STRATEGY": args.strategy}
        started = time.perf_counter()
        done = subprocess.run(command, env=env)
        runs[count] = json.loads(part.read_text()) if done.returncode == 0 and part.is_file() else \
            {"error": f"torchrun exited {done.returncode}"}
        runs[count]["wall_seconds"] = time.perf_counter() - started
        if "adapter_dir" in runs[count]:
            runs[count]["adapter"] = adapter_summary(Path(runs[count]["adapter_dir"]))
        print(count, json.dumps({k: v for k, v in runs[count].items() if k != "loss_history"}), flush=True)
    one = runs.get(1, {}).get("tokens_per_second")
    for count, run in runs.items():
        if one and run.get("tokens_per_second"):
            run["speedup_vs_1_gpu"] = run["tokens_per_second"] / one
            run["scaling_efficiency"] = run["speedup_vs_1_gpu"] / count
    import torch

    output = {"benchmark": "benchmarks.multi_gpu", "size": args.size, "config": config, "steps": args.steps,
              "strategy": args.strategy, "global_batch_note": "accumulation divided by the GPU count (same global batch)",
              "runs": runs, "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
              "gpu_count": torch.cuda.device_count() if args.device == "cuda" else 0,
              "torch": torch.__version__, "date": date.today().isoformat()}
    if args.out:
        Path(args.out).write_text(json.dumps(output, indent=2, default=float))


if __name__ == "__main__":
    main()
