#!/usr/bin/env bash
# Set up, then materialize every asset on the embedded defaults (offline, CPU is enough).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# Unpartitioned assets (data and analysis), then the model and hand-off assets of the 270m partition.
.venv/bin/dagster asset materialize -m pipelines.definitions \
  --select "raw_instructions,clean_instructions,gemma_chat_dataset,token_efficiency,tr_mmlu_questions"
.venv/bin/dagster asset materialize -m pipelines.definitions \
  --select "base_model,qlora_adapter,tr_mmlu_scores,promoted_adapter,merged_model,sample_answers,model_card" --partition 270m
