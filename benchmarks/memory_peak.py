"""What is alive at the peak of a training step: the allocator's own record, grouped by call site.

Runs one variant of the project's trainer (as `benchmarks.train_step` does: random weights of a
real Gemma 3 text shape, the project's packed chat data) with PyTorch's CUDA memory history on,
then replays the allocation trace to the moment of the highest allocated total and reports the
blocks alive then, grouped by the innermost frame in library or project code.

    python -m benchmarks.memory_peak --size 4b --variant project+sdpa --tokenizer tok.tar.xz --out peak.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

# frames from these packages say where a block came from; torch's own frames rarely do
OWNERS = ("tr_gemma/", "transformers/", "peft/", "trl/", "bitsandbytes/", "liger_kernel/", "accelerate/")


def call_site(frames: list[dict]) -> str:
    """The innermost frame in library or project code (frames are innermost first)."""
    for frame in frames:
        name = frame.get("filename", "")
        if any(owner in name for owner in OWNERS):
            short = name.split("site-packages/")[-1]
            return f"{short}:{frame.get('line')} {frame.get('name')}"
    return "(torch internals or no Python frame)"


def live_at_peak(events: list[dict], already_allocated: int = 0, from_index: int = 0) -> dict:
    """Replay alloc/free events; return the peak total and the blocks alive at that moment.

    `already_allocated` counts bytes allocated before the trace began (not in `events`); only
    events from `from_index` on can set the peak (training, not the model load before it).
    """
    live: dict[int, dict] = {}
    total = peak = already_allocated
    peak_blocks: list[dict] = []
    peak_index = -1
    for index, event in enumerate(events):
        action = event.get("action")
        if action == "alloc":
            live[event["addr"]] = event
            total += event["size"]
            if total > peak and index >= from_index:
                peak, peak_index = total, index
                peak_blocks = list(live.values())
        elif action == "free_requested" and event["addr"] in live:
            total -= live.pop(event["addr"])["size"]
    groups: dict[str, list] = defaultdict(lambda: [0, 0])
    for block in peak_blocks:
        group = groups[call_site(block.get("frames", []))]
        group[0] += block["size"]
        group[1] += 1
    by_site = sorted(({"site": site, "gib": size / 2**30, "blocks": count}
                      for site, (size, count) in groups.items()), key=lambda g: -g["gib"])
    largest = sorted(peak_blocks, key=lambda b: -b["size"])[:25]
    return {
        "peak_gib": peak / 2**30,
        "already_allocated_gib": already_allocated / 2**30,
        "peak_event_index": peak_index,
        "events": len(events),
        "by_site": by_site,
        "largest_blocks": [{"gib": b["size"] / 2**30, "site": call_site(b.get("frames", [])),
                            "stack": [f"{f.get('filename', '').split('site-packages/')[-1]}:{f.get('line')} "
                                      f"{f.get('name')}" for f in b.get("frames", [])
                                      if any(o in f.get("filename", "") for o in OWNERS)][:8]}
                           for b in largest],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", required=True)
    parser.add_argument("--variant", default="project")
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from benchmarks.gpu_qlora import build_chat_parquet
    from benchmarks.train_step import LEVERS, random_checkpoint, reset_peak, scratch_folder
    from tr_gemma.training.recipe import load_recipe
    from tr_gemma.training.sft import TrainingJob, prepare_training

    work, tokenizer_dir = scratch_folder(args.tokenizer)
    random_checkpoint(work / "model", args.size, args.layers or None, tokenizer_dir, "cuda")
    data = build_chat_parquet(work, args.rows, None)
    overrides: dict = {"training": {"max_steps": args.steps, "save_steps": 100_000, "logging_steps": 1}}
    for lever in args.variant.split("+")[1:]:
        for section, values in LEVERS[lever].items():
            overrides.setdefault(section, {}).update(values)
    job = TrainingJob(load_recipe(args.size, overrides), work / "model", data, work / "run", device="cuda")

    reset_peak("cuda")
    already = torch.cuda.memory_allocated()
    torch.cuda.memory._record_memory_history(max_entries=4_000_000, stacks="python")
    prepared = prepare_training(job, lambda metrics: None, print)
    device = torch.cuda.current_device()
    training_starts = len(torch.cuda.memory._snapshot()["device_traces"][device])
    torch.cuda.reset_peak_memory_stats()
    prepared.trainer.train()
    snapshot = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    report = live_at_peak(snapshot["device_traces"][device], already, training_starts)
    report.update(size=args.size, variant=args.variant, layers=args.layers or None,
                  training_max_memory_allocated_gib=torch.cuda.max_memory_allocated() / 2**30,
                  gpu=torch.cuda.get_device_name(), torch=torch.__version__, date=date.today().isoformat())
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("peak_gib", "training_max_memory_allocated_gib", "events")}))
    for group in report["by_site"][:20]:
        print(f"{group['gib']:8.3f} GiB {group['blocks']:6d}  {group['site']}")


if __name__ == "__main__":
    main()
