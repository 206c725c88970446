"""Jobs, the weekly schedule and the Hub revision sensor."""

from datetime import datetime

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.schedules import weekly_retrain_schedule
from pipelines.sensors import hub_dataset_revision_sensor
from resources.huggingface import HuggingFaceHub
from tr_gemma.hub import RepoRevision


def test_jobs_cover_retrain_evaluation_and_data():
    retrain = defs.resolve_job_def("retrain_job")
    assert retrain.partitions_def.get_partition_keys() == ["270m", "1b", "4b", "12b", "27b"]
    keys = lambda job: {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}  # noqa: E731
    assert {"raw_instructions", "token_efficiency", "qlora_adapter", "tr_mmlu_scores", "promoted_adapter",
            "merged_model", "sample_answers", "model_card"} <= keys("retrain_job")
    assert keys("evaluation_job") == {"tr_mmlu_questions", "tr_mmlu_scores", "promoted_adapter", "model_card"}
    assert "qlora_adapter" not in keys("data_job") and "gemma_chat_dataset" in keys("data_job")


def test_weekly_schedule_requests_one_run_per_size_and_ships_stopped(monkeypatch):
    assert weekly_retrain_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 30, 3, 0))
    requests = list(weekly_retrain_schedule(context))
    assert [(r.partition_key, r.run_key) for r in requests] == [("270m", "weekly-2026-W49-270m")]
    monkeypatch.setenv("TR_GEMMA_RETRAIN_SIZES", "270m, 1b")
    assert [r.partition_key for r in weekly_retrain_schedule(context)] == ["270m", "1b"]


def test_sensor_skips_with_the_reason_when_offline():
    context = dg.build_sensor_context(resources={"hf_hub": HuggingFaceHub()})
    result = hub_dataset_revision_sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert "Hub not checked" in result.skip_message and "unreachable" in result.skip_message


def test_sensor_requests_a_retrain_per_size_on_a_new_revision(monkeypatch):
    import tr_gemma.hub

    monkeypatch.setattr(tr_gemma.hub, "probe_repo", lambda repo, rev, kind, token, timeout_s, alternatives="":
                        RepoRevision(repo, rev, "b" * 40))
    context = dg.build_sensor_context(resources={"hf_hub": HuggingFaceHub()}, cursor="a" * 40)
    result = hub_dataset_revision_sensor(context)
    assert result.cursor == "b" * 40
    [request] = result.run_requests
    assert request.partition_key == "270m" and request.run_key == "b" * 40 + "-270m"
    assert request.run_config["ops"]["raw_instructions"]["config"] == {"source": "hub", "revision": "b" * 40}
    same = hub_dataset_revision_sensor(dg.build_sensor_context(resources={"hf_hub": HuggingFaceHub()}, cursor="b" * 40))
    assert isinstance(same, dg.SkipReason) and "still at" in same.skip_message
