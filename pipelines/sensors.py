"""Sensors: retrain when the Hub data set moves to a new commit."""

import dagster as dg

from pipelines.jobs import retrain_job
from pipelines.schedules import retrain_sizes
from resources.huggingface import HuggingFaceHub
from tr_gemma.errors import SourceUnavailableError
from tr_gemma.hub_instructions import HUB_DATASET_ID


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=6 * 3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches malhajar/alpaca-gpt4-tr on the Hub (cursor = last seen commit) and requests a "
    "retrain from the Hub data at the new commit when it changes. Offline, it skips with the reason.",
)
def hub_dataset_revision_sensor(context: dg.SensorEvaluationContext, hf_hub: HuggingFaceHub):
    from tr_gemma.hub import probe_repo

    try:
        hf_hub.refuse_if_offline(f"dataset '{HUB_DATASET_ID}'", "")
        sha = probe_repo(HUB_DATASET_ID, "main", "dataset", hf_hub.token, hf_hub.timeout_s).sha
    except SourceUnavailableError as exc:
        return dg.SkipReason(f"Hub not checked: {exc}")
    if sha == context.cursor:
        return dg.SkipReason(f"{HUB_DATASET_ID} still at {sha[:12]}")
    requests = [
        dg.RunRequest(
            run_key=f"{sha}-{size}",
            partition_key=size,
            run_config={"ops": {"raw_instructions": {"config": {"source": "hub", "revision": sha}}}},
            tags={"trigger": "hub_dataset_revision", "dataset_revision": sha},
        )
        for size in retrain_sizes()
    ]
    return dg.SensorResult(run_requests=requests, cursor=sha)
