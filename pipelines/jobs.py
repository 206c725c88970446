"""Jobs users launch from the UI, the CLI, schedules and sensors."""

import dagster as dg

from assets.partitions import model_sizes

# Benchmark questions come with the data: the contamination check on the chat data reads them.
DATA = dg.AssetSelection.groups("data", "analysis") | dg.AssetSelection.assets("tr_mmlu_questions")
MODEL = dg.AssetSelection.groups("model", "training")
EVALUATION = dg.AssetSelection.assets("tr_mmlu_scores", "promoted_adapter")
HAND_OFF = dg.AssetSelection.groups("hand_off")

data_job = dg.define_asset_job(
    name="data_job",
    selection=DATA,
    description="Load, clean and render the Turkish instruction data; token analysis; benchmark questions.",
)

retrain_job = dg.define_asset_job(
    name="retrain_job",
    selection=DATA | MODEL | EVALUATION | HAND_OFF,
    partitions_def=model_sizes,
    description="Full retrain of one model size: data, token analysis, base model, QLoRA adapter, "
    "TR-MMLU scores and promotion, then the merged model, sample answers and the model card.",
)

evaluation_job = dg.define_asset_job(
    name="evaluation_job",
    selection=EVALUATION | dg.AssetSelection.assets("tr_mmlu_questions", "model_card"),
    partitions_def=model_sizes,
    description="Score the current adapter of one size on TR-MMLU, run the promotion gate and refresh "
    "the model card with the new scores.",
)
