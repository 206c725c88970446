"""Process entry point of the evaluator, launched by `tr_mmlu_scores` through Dagster Pipes.

    python -m tr_gemma.evaluation.pipes_main     (parameters arrive as Pipes extras)
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
from dagster_pipes import PipesContext, open_dagster_pipes


def run(pipes: PipesContext) -> None:
    from tr_gemma.atomic_io import atomic_file
    from tr_gemma.evaluation.evaluate import EvalSettings, evaluate_base_and_adapter, write_audit
    from tr_gemma.evaluation.report import comparison_chart, section_table

    extras = pipes.extras
    questions = pd.read_parquet(extras["questions_path"])
    settings = EvalSettings(num_fewshot=extras["num_fewshot"], load_in_4bit=extras["load_in_4bit"],
                            batch_size=str(extras["batch_size"]), device=extras["device"], limit=extras.get("limit"))
    adapter = Path(extras["adapter_dir"]) if extras.get("adapter_dir") else None
    base, tuned, info = evaluate_base_and_adapter(Path(extras["model_dir"]), adapter, questions, settings, pipes.log.info)
    out = Path(extras["output_dir"])
    scores = [s for s in (base, tuned) if s is not None]
    with atomic_file(out / "per_question.jsonl") as staging:
        write_audit(staging, scores)
    table = section_table(base, tuned)
    with atomic_file(out / "per_section.csv") as staging:
        table.to_csv(staging, index=False)
    summary = {**info, "base": _summary(base), "fine_tuned": _summary(tuned) if tuned else None}
    with atomic_file(out / "scores.json") as staging:
        staging.write_text(json.dumps(summary, indent=2))
    chart = base64.b64encode(comparison_chart(table)).decode()
    delta = (tuned.accuracy - base.accuracy) if tuned else None
    pipes.report_asset_materialization(metadata={
        "base_accuracy": {"raw_value": base.accuracy, "type": "float"},
        "fine_tuned_accuracy": {"raw_value": tuned.accuracy if tuned else None, "type": "float" if tuned else "null"},
        "delta": {"raw_value": delta, "type": "float" if tuned else "null"},
        "base_accuracy_ci95": f"[{base.ci_low:.3f}, {base.ci_high:.3f}]",
        "fine_tuned_accuracy_ci95": f"[{tuned.ci_low:.3f}, {tuned.ci_high:.3f}]" if tuned else "n/a",
        "base_acc_norm": {"raw_value": base.accuracy_norm, "type": "float"},
        "questions": base.n,
        "bos_tokens_per_request": base.bos_per_request,
        "lm_eval_version": info["lm_eval_version"],
        "task_hash": info["task_hash"],
        "num_fewshot": info["num_fewshot"],
        "per_section": {"raw_value": _markdown(table), "type": "md"},
        "chart": {"raw_value": f"![TR-MMLU base vs fine-tuned](data:image/png;base64,{chart})", "type": "md"},
        "per_question_log": {"raw_value": str(out / "per_question.jsonl"), "type": "path"},
        "scores_path": {"raw_value": str(out / "scores.json"), "type": "path"},
    })


def _summary(score) -> dict:
    return {"accuracy": score.accuracy, "acc_norm": score.accuracy_norm, "n": score.n,
            "ci95": [score.ci_low, score.ci_high], "bos_per_request": score.bos_per_request}


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main() -> None:
    with open_dagster_pipes() as pipes:
        run(pipes)


if __name__ == "__main__":
    main()
