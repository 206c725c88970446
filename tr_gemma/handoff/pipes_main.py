"""Process entry point of the hand-off work, launched by `merged_model` and `sample_answers`
through Dagster Pipes.

    python -m tr_gemma.handoff.pipes_main     (parameters arrive as Pipes extras; "task" picks the work)
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster_pipes import PipesContext, open_dagster_pipes


def merge(pipes: PipesContext) -> None:
    from tr_gemma.handoff.merge import merge_adapter

    extras = pipes.extras
    report = merge_adapter(Path(extras["model_dir"]), Path(extras["adapter_dir"]), Path(extras["output_dir"]),
                           pipes.log.info, tolerance=float(extras["tolerance"]))
    agreement = {key: {"raw_value": getattr(report, key), "type": "float"}
                 for key in ("logits_relative_error", "logits_max_abs_diff", "top1_agreement", "adapter_effect")}
    pipes.report_asset_check(
        "merged_logits_match_adapter", passed=report.passed, severity="ERROR",
        metadata={**agreement, "tolerance": {"raw_value": report.tolerance, "type": "float"},
                  "probe_tokens": report.probe_tokens},
    )
    pipes.report_asset_materialization(
        metadata={
            "path": {"raw_value": report.output_dir, "type": "path"},
            "parameters": report.parameters,
            "dtype": report.dtype,
            "merged_into": "bf16 base weights (not the 4-bit training weights)",
            "stop_token_ids": {"raw_value": report.stop_token_ids, "type": "json"},
            "stop_tokens": ", ".join(report.stop_tokens),
            "pad_token_id": report.pad_token_id,
            "files": ", ".join(report.files),
            "size_gib": {"raw_value": report.size_bytes / 2**30, "type": "float"},
            "adapter_digest": report.adapter_digest,
            "wall_seconds": {"raw_value": report.seconds, "type": "float"},
            **agreement,
        },
    )


def sample_answers(pipes: PipesContext) -> None:
    from tr_gemma.atomic_io import atomic_file
    from tr_gemma.handoff.generation import generate_answers, read_stop_ids, side_by_side_markdown
    from tr_gemma.handoff.sample_prompts import SAMPLE_PROMPTS

    extras = pipes.extras
    merged_dir, output = Path(extras["merged_dir"]), Path(extras["output_path"])
    device, max_new_tokens, threads = extras["device"], int(extras["max_new_tokens"]), int(extras.get("cpu_threads", 1))
    stop_ids = read_stop_ids(merged_dir)  # the shipped generation config; the base model gets the same
    pipes.log.info(f"Greedy answers to {len(SAMPLE_PROMPTS)} prompts on {device}, at most {max_new_tokens} "
                   f"new tokens, stopping on ids {stop_ids}.")
    base = generate_answers(Path(extras["base_model_dir"]), SAMPLE_PROMPTS, stop_ids, max_new_tokens, device,
                            pipes.log.info, "base", threads)
    tuned = generate_answers(merged_dir, SAMPLE_PROMPTS, stop_ids, max_new_tokens, device, pipes.log.info,
                             "fine-tuned", threads)
    with atomic_file(output) as staging:
        with open(staging, "w", encoding="utf-8") as handle:
            for prompt, b, t in zip(SAMPLE_PROMPTS, base, tuned):
                row = {"id": prompt.id, "kind": prompt.kind, "system": prompt.system,
                       "instruction": prompt.instruction, "input": prompt.input, "reference": prompt.reference,
                       "base": b.to_dict(), "fine_tuned": t.to_dict()}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    pipes.report_asset_materialization(metadata={
        "side_by_side": {"raw_value": side_by_side_markdown(SAMPLE_PROMPTS, base, tuned), "type": "md"},
        "prompts": len(SAMPLE_PROMPTS),
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy (do_sample=False)",
        "stop_token_ids": {"raw_value": stop_ids, "type": "json"},
        "device": device,
        "base_stopped_on_a_stop_token": sum(a.stop != "max_new_tokens" for a in base),
        "fine_tuned_stopped_on_a_stop_token": sum(a.stop != "max_new_tokens" for a in tuned),
        "wall_seconds": {"raw_value": sum(a.seconds for a in base + tuned), "type": "float"},
        "answers_path": {"raw_value": str(output), "type": "path"},
    })


TASKS = {"merge": merge, "sample_answers": sample_answers}


def main() -> None:
    with open_dagster_pipes() as pipes:
        TASKS[pipes.extras["task"]](pipes)


if __name__ == "__main__":
    main()
