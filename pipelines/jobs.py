"""Jobs users launch from the UI or the CLI."""

import dagster as dg

data_job = dg.define_asset_job(
    name="data_job",
    # The benchmark questions come along: the contamination check on the chat data reads them.
    selection=dg.AssetSelection.groups("data") | dg.AssetSelection.assets("tr_mmlu_questions"),
    description="Load, clean and render the Turkish instruction data (and the benchmark questions).",
)
