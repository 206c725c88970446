"""Scheduled retrains (shipped stopped: a person turns them on in the UI)."""

import os

import dagster as dg

from pipelines.jobs import retrain_job

# Sizes the weekly retrain covers; override with TR_GEMMA_RETRAIN_SIZES="270m,1b".
DEFAULT_RETRAIN_SIZES = ("270m",)


def retrain_sizes() -> list[str]:
    configured = os.environ.get("TR_GEMMA_RETRAIN_SIZES", "")
    return [s.strip() for s in configured.split(",") if s.strip()] or list(DEFAULT_RETRAIN_SIZES)


@dg.schedule(
    job=retrain_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, when nobody waits for the GPU
    execution_timezone="Europe/Istanbul",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly retrain: one run of retrain_job per selected model size.",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext):
    week = context.scheduled_execution_time.strftime("%G-W%V")
    for size in retrain_sizes():
        yield dg.RunRequest(run_key=f"weekly-{week}-{size}", partition_key=size, tags={"trigger": "weekly_retrain"})
