"""The code location's Definitions: every asset, check, job and resource.

Importing this module must stay fast and must not import torch, transformers or datasets; heavy
work happens inside asset bodies or in separate processes.
"""

import dagster as dg

import assets
from pipelines.jobs import data_job, evaluation_job, retrain_job
from pipelines.schedules import weekly_retrain_schedule
from pipelines.sensors import hub_dataset_revision_sensor
from resources import build_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[data_job, retrain_job, evaluation_job],
    schedules=[weekly_retrain_schedule],
    sensors=[hub_dataset_revision_sensor],
    resources=build_resources(),
)
