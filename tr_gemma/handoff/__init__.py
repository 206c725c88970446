"""Hand-off artifacts: the merged bf16 model, sample answers side by side, the model card and
optional Hub publishing. Merge and generation run in their own process (launched through Dagster
Pipes); the card and the Hub upload are plain Python and never import torch."""
