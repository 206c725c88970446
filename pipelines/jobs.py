"""Jobs users launch from the UI or the CLI."""

import dagster as dg

data_job = dg.define_asset_job(
    name="data_job",
    selection=dg.AssetSelection.groups("data"),
    description="Load, clean and render the Turkish instruction data.",
)
