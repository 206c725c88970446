"""Partitions shared by the model-dependent assets."""

import dagster as dg

from tr_gemma.model_sizes import SIZES

model_sizes = dg.StaticPartitionsDefinition(list(SIZES))
