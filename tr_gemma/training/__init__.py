"""The QLoRA trainer. Runs in its own process (launched through Dagster Pipes); it never imports
Dagster itself, only `dagster_pipes` to stream logs and metrics back to the run."""
