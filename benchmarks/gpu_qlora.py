"""GPU benchmark of the project's own QLoRA trainer (tr_gemma.training.sft.train).

Runs on the lent GPU machine: the real Gemma 3 270M (the embedded GGUF package, converted with
the project's code) and/or a random-weight model of the real Gemma 3 1B shapes, on the project's
chat data (the embedded sample repeated with variations to a corpus large enough to fill the
steps), recipe defaults (NF4 double-quant, LoRA r=32 alpha=64 on 7 projections, 2 x 4096 packed,
gradient accumulation 4, paged 8-bit AdamW, gradient checkpointing, bf16).

    python -m benchmarks.gpu_qlora --model 270m --steps 20 --out $OUT/gpu_qlora_270m.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path


def build_chat_parquet(folder: Path, rows: int, tokenizer) -> Path:
    from benchmarks.corpus import synthetic_corpus
    from tr_gemma.chat_dataset import build_chat_frame
    from tr_gemma.cleaning import clean_instructions

    raw = synthetic_corpus(rows)
    chat = build_chat_frame(clean_instructions(raw).clean, eval_fraction=0.02, seed=42)
    path = folder / "chat.parquet"
    chat.to_parquet(path)
    return path


def random_1b_checkpoint(folder: Path, tokenizer_dir: Path) -> Path:
    """Gemma 3 1B text shapes with random weights (speed and memory only, no quality)."""
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=262_144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
        max_position_embeddings=32_768, rope_theta=1_000_000.0, query_pre_attn_scalar=256,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Gemma3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    for file in tokenizer_dir.iterdir():
        shutil.copy2(file, folder / file.name)
    del model
    torch.cuda.empty_cache()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["270m", "1b-random"], default="270m")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from tr_gemma.checkpoints import ensure_embedded_checkpoint, ensure_embedded_tokenizer
    from tr_gemma.training.recipe import load_recipe
    from tr_gemma.training.sft import TrainingJob, train

    work = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    tokenizer_dir = ensure_embedded_tokenizer(work / "cache")
    if args.model == "270m":
        model_dir = ensure_embedded_checkpoint(work / "cache")
        size = "270m"
    else:
        model_dir = random_1b_checkpoint(work / "1b", tokenizer_dir)
        size = "1b"
    prepared = time.perf_counter() - started
    data = build_chat_parquet(work, args.rows, None)
    recipe = load_recipe(size, {"training": {"max_steps": args.steps, "save_steps": 10_000, "logging_steps": 1}})
    logs: list[dict] = []
    report = train(TrainingJob(recipe, model_dir, data, work / "out", device="cuda"), logs.append, print)
    result = {
        "benchmark": "project QLoRA trainer (tr_gemma.training.sft.train)",
        "model": "Gemma 3 270M, real weights (GGUF Q4_K_M dequantised)" if args.model == "270m"
        else "Gemma 3 1B text shapes, random weights",
        "recipe": recipe.model_dump(),
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "steps": report.steps,
        "tokens_per_optimizer_step": recipe.training.per_device_train_batch_size * recipe.training.max_length
        * recipe.training.gradient_accumulation_steps,
        "tokens_per_second_median": report.tokens_per_second,
        "peak_memory_allocated_gib": report.peak_memory_gib,
        "eval_loss_before": report.eval_loss_before,
        "eval_loss_after": report.eval_loss_after,
        "train_loss": report.train_loss,
        "wall_seconds": report.wall_seconds,
        "preparation_seconds": prepared,
        "trainable_parameters": report.trainable_parameters,
        "per_step_logs": logs,
        "host": platform.node(),
        "date": date.today().isoformat(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_step_logs", "recipe")}, indent=2, default=float))


if __name__ == "__main__":
    main()
