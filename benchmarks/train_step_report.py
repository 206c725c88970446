"""Tables for docs/benchmarks.md from benchmarks/results/train_step_*.json.

- the stacks per size (tokens/s, MFU, peak memory, ratio to the baseline); 27B from runs with
  fewer layers, extrapolated linearly in the layer count (step time and memory are both
  per-layer terms plus a fixed part: embeddings, LM head, loss);
- each lever against the project stack without it;
- the memory planner (tr_gemma.training.memory) against every measured peak.

    python -m benchmarks.train_step_report benchmarks/results/train_step_*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.gemma3_shapes import matmul_parameters, text_config
from benchmarks.train_step import same_recipe_baseline
from tr_gemma.training.kept_outputs import KEPT_PROJECTIONS

RECIPE_LENGTH = 4096


def load(paths: list[str]) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def own_peak(run: dict, variant: str) -> float | None:
    """The variant's own peak, or None where the run cannot tell it apart from an earlier one's.

    Before 2026-11-27 (second session) each trainer left its embedding registered with
    bitsandbytes' process-wide optimizer manager, so every stack after the first one of a run
    (the baseline included) peaked that much higher (one embedding per earlier trainer). Runs since
    record `held_before_gib` and measure each peak above it; of older runs only the first
    variant (results keep run order) is clean.
    """
    result = run["results"].get(variant, {})
    if "peak_memory_allocated_gib" not in result:
        return None
    if "held_before_gib" in result or variant == next(iter(run["results"])):
        return result["peak_memory_allocated_gib"]
    return None


def lora_dropout_on(result: dict, variant: str) -> bool:
    """Whether the stack trained with LoRA dropout (runs before `recipe_lora` was recorded: every
    recipe had 0.05, and "nodropout" variants 0)."""
    if "recipe_lora" in result:
        return result["recipe_lora"]["lora_dropout"] > 0
    return "nodropout" not in variant.split("+")


def planner_points(runs: list[dict]) -> list[dict]:
    """Every clean peak of the project's trainer with the planner's estimate for its shape and recipe."""
    from tr_gemma.training.memory import estimate_training_memory

    points = []
    for run in runs:
        for variant, r in run["results"].items():
            measured = own_peak(run, variant)
            if not variant.startswith("project") or measured is None:
                continue
            t = r["recipe_training"]
            estimate = estimate_training_memory(run["config"], t["per_device_train_batch_size"], t["max_length"],
                                                run["lora_r"], attention=t.get("attn_implementation", "sdpa"),
                                                offloading=t.get("activation_offloading", False),
                                                fused_norms=t.get("fused_norm_activation", False),
                                                checkpointing=t.get("gradient_checkpointing", True),
                                                lora_dropout=lora_dropout_on(r, variant),
                                                offloaded_layers=t.get("offloaded_layers"),
                                                compact_masks=t.get("compact_dropout_masks", False),
                                                cuda_graphs=t.get("cuda_graph_layers", False),
                                                dropout_kept=r.get("lora_dropout_kept", "copy"),
                                                kept_outputs=t.get("keep_projection_outputs", False),
                                                kept_projections=tuple(t.get("kept_projections", KEPT_PROJECTIONS)))
            points.append({"size": run["size"], "layers": run["layers"], "batch": t["per_device_train_batch_size"],
                           "length": t["max_length"], "variant": variant, "date": run["date"],
                           "estimate_gib": estimate.total / 2**30, "measured_gib": measured})
    return points


def extrapolate(runs: list[dict], variant: str, layers: int) -> dict | None:
    """Linear fit of step time per token and of peak memory over the runs' layer counts
    (the last run given for each layer count)."""
    by_layers = {r["layers"]: r for r in runs if "tokens_per_second" in r["results"].get(variant, {})}
    if len(by_layers) < 2:
        return None
    (l1, run_a), (l2, run_b) = sorted(by_layers.items())[:2]
    a, b = run_a["results"][variant], run_b["results"][variant]
    time_per_token = lambda r: 1 / r["tokens_per_second"]  # noqa: E731
    slope_t = (time_per_token(b) - time_per_token(a)) / (l2 - l1)
    result = {"tokens_per_second": 1 / (time_per_token(a) + slope_t * (layers - l1)),
              "extrapolated_from_layers": [l1, l2]}
    peak_a, peak_b = own_peak(run_a, variant), own_peak(run_b, variant)
    if peak_a is not None and peak_b is not None:
        result["peak_memory_allocated_gib"] = peak_a + (peak_b - peak_a) / (l2 - l1) * (layers - l1)
    return result


def size_rows(runs: list[dict]) -> dict[str, dict]:
    """Per size: {variant: result}, full-depth runs as measured, partial-depth runs extrapolated."""
    by_size: dict[str, list[dict]] = {}
    for run in runs:
        if run["max_length"] == RECIPE_LENGTH:  # the 2 x 4096; other lengths feed the planner table
            by_size.setdefault(run["size"], []).append(run)
    table: dict[str, dict] = {}
    for size, size_runs in by_size.items():
        full = [r for r in size_runs if r["layers"] == r["full_layers"]]
        if full:  # the newest clean-format run of the size; peaks only where they are the stack's own
            run = max(full, key=lambda r: (any("held_before_gib" in v for v in r["results"].values()), r["date"]))
            table[size] = {"run": run, "results": {v: {**r, "peak_memory_allocated_gib": own_peak(run, v)}
                                                   for v, r in run["results"].items()}}
            continue
        size_runs.sort(key=lambda r: r["date"])  # stable: the newest day's last file of each depth is fitted
        variants = {v for r in size_runs for v in r["results"]}
        results = {v: e for v in variants if (e := extrapolate(size_runs, v, size_runs[0]["full_layers"]))}
        peak = size_runs[0]["measured_bf16_matmul_tflops"]
        n = matmul_parameters(text_config(size))
        for variant, result in results.items():
            base_name = same_recipe_baseline(variant, results)
            base = results.get(base_name, {}).get("tokens_per_second")
            result["mfu"] = 4 * n * result["tokens_per_second"] / (peak * 1e12)
            result["ratio_to_baseline"] = result["tokens_per_second"] / base if base else None
            result["baseline_for_ratio"] = base_name
        table[size] = {"run": size_runs[0], "results": results}
    return table


def stacks_table(table: dict[str, dict], project: str) -> str:
    lines = ["| size | stack | tokens/s | MFU | peak allocated (GiB) | vs baseline |", "|---|---|---|---|---|---|"]
    for size in ("270m", "1b", "4b", "12b", "27b"):
        if size not in table:
            continue
        results = table[size]["results"]
        fastest = max((v for v, r in results.items() if v.startswith("project+") and "tokens_per_second" in r),
                      key=lambda v: results[v]["tokens_per_second"], default=None)
        matched = (results.get(fastest) or {}).get("baseline_for_ratio") if fastest else None
        for variant in dict.fromkeys(["baseline", project, matched, fastest]):
            r = results.get(variant) if variant else None
            if not r or "tokens_per_second" not in r:
                continue
            note = " (extrapolated from {}/{} layers)".format(*r["extrapolated_from_layers"]) if "extrapolated_from_layers" in r else ""
            peak = r.get("peak_memory_allocated_gib")
            lines.append(f"| {size}{note} | {variant} | {r['tokens_per_second']:,.0f} | {r['mfu']:.1%} | "
                         f"{'n/a' if peak is None else f'{peak:.2f}'} | {r.get('ratio_to_baseline') or 1:.2f}x |")
    return "\n".join(lines)


def levers_table(runs: list[dict]) -> str:
    lines = ["| size | variant | tokens/s | peak allocated (GiB) | vs baseline | run |", "|---|---|---|---|---|---|"]
    for run in runs:
        if run["layers"] != run["full_layers"]:
            continue
        for variant, r in run["results"].items():
            if "tokens_per_second" in r:
                peak = own_peak(run, variant)
                shown = f"{peak:.2f}" if peak is not None else "(held an earlier trainer's embedding)"
                lines.append(f"| {run['size']} (L={run['max_length']}) | {variant} | {r['tokens_per_second']:,.0f} | "
                             f"{shown} | {r.get('ratio_to_baseline') or 0:.2f}x | {run['date']} |")
            else:
                lines.append(f"| {run['size']} | {variant} | failed: {r.get('error', '?')[:80]} | | | |")
    return "\n".join(lines)


def planner_table(runs: list[dict]) -> str:
    lines = ["| size | layers | tokens per micro-step | variant | estimate (GiB) | measured (GiB) | error | run |",
             "|---|---|---|---|---|---|---|---|"]
    for p in planner_points(runs):
        lines.append(f"| {p['size']} | {p['layers']} | {p['batch']} x {p['length']} | {p['variant']} | "
                     f"{p['estimate_gib']:.2f} | {p['measured_gib']:.2f} | {p['estimate_gib'] / p['measured_gib'] - 1:+.1%} | "
                     f"{p['date']} |")
    return "\n".join(lines)


def main() -> None:
    runs = load(sys.argv[1:])
    project = "project"
    print("## Stacks\n\n" + stacks_table(size_rows(runs), project))
    print("\n## Levers\n\n" + levers_table(runs))
    print("\n## Memory planner\n\n" + planner_table(runs))


if __name__ == "__main__":
    main()
