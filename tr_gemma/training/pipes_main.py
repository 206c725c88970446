"""Process entry point of the trainer, launched by the `qlora_adapter` asset through Dagster Pipes.

    python -m tr_gemma.training.pipes_main     (parameters arrive as Pipes extras)

Logs and per-step metrics stream into the Dagster run as they happen; the adapter, the report
and the `loss_is_finite` check result are reported when training ends.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

from dagster_pipes import PipesContext, open_dagster_pipes

from tr_gemma.training.recipe import parse_recipe


def _format_metrics(metrics: dict) -> str:
    names = ("loss", "learning_rate", "grad_norm", "tokens_per_second", "peak_memory_gib", "eval_loss")
    parts = [f"{n}={metrics[n]:.4g}" for n in names if isinstance(metrics.get(n), (int, float))]
    return f"step {metrics.get('step')}/{metrics.get('max_steps')} " + " ".join(parts)


def run(pipes: PipesContext) -> None:
    from tr_gemma.training.callbacks import NonFiniteLossError
    from tr_gemma.training.loss_chart import loss_curve_png
    from tr_gemma.training.sft import TrainingJob, train

    extras = pipes.extras
    job = TrainingJob(
        recipe=parse_recipe(extras["recipe"], source="qlora_adapter run config"),
        model_dir=Path(extras["model_dir"]),
        data_path=Path(extras["data_path"]),
        output_dir=Path(extras["output_dir"]),
        data_version=extras.get("data_version", "unknown"),
        base_model_revision=extras.get("base_model_revision", "unknown"),
        device=extras.get("device", "auto"),
    )

    def emit(metrics: dict) -> None:
        pipes.log.info(_format_metrics(metrics) + " | " + json.dumps(metrics, default=float))

    try:
        report = train(job, emit, pipes.log.info)
    except NonFiniteLossError as exc:
        pipes.report_asset_check("loss_is_finite", passed=False, severity="ERROR", metadata={"error": str(exc)})
        raise
    pipes.report_asset_check(
        "loss_is_finite", passed=True,
        metadata={"final_train_loss": {"raw_value": report.train_loss, "type": "float"}},
    )
    chart = base64.b64encode(loss_curve_png(report.loss_history, report.eval_loss_before, report.eval_loss_after)).decode()
    pipes.report_asset_materialization(
        metadata={
            "adapter_path": {"raw_value": report.adapter_dir, "type": "path"},
            "device": report.device,
            "steps": report.steps,
            "eval_loss_before": _number(report.eval_loss_before),
            "eval_loss_after": _number(report.eval_loss_after),
            "eval_loss_improvement": _number(report.eval_loss_before - report.eval_loss_after),
            "train_loss": _number(report.train_loss),
            "tokens_per_second": _number(report.tokens_per_second),
            "peak_memory_gib": _number(report.peak_memory_gib),
            "wall_seconds": _number(report.wall_seconds),
            "trainable_parameters": report.trainable_parameters,
            "resumed_from": report.resumed_from or "none",
            "recipe": {"raw_value": job.recipe.model_dump(), "type": "json"},
            "loss_curve": {"raw_value": f"![loss curve](data:image/png;base64,{chart})", "type": "md"},
        },
    )


def _number(value: float) -> dict:
    return {"raw_value": None if math.isnan(value) else float(value), "type": "float" if not math.isnan(value) else "null"}


def main() -> None:
    from tr_gemma.training.distributed import placement

    if placement().is_main:
        with open_dagster_pipes() as pipes:
            run(pipes)
    else:  # other ranks of a multi-GPU launch train silently; rank 0 reports to Dagster
        run(_SilentRank(_read_extras()))


def _read_extras() -> dict:
    """The Pipes extras, read without opening a second message channel to Dagster."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return data["extras"]


class _SilentRank:
    """Stands in for the Pipes context on ranks other than 0: same calls, no messages."""

    class _Log:
        def info(self, message: str) -> None:
            pass

    def __init__(self, extras: dict):
        self.extras = extras
        self.log = self._Log()

    def report_asset_check(self, *args, **kwargs) -> None:
        pass

    def report_asset_materialization(self, *args, **kwargs) -> None:
        pass


if __name__ == "__main__":
    main()
