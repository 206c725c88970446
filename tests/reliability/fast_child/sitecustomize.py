"""Run by Python at start-up in the trainer process that test_secrets launches through Dagster Pipes
(its directory is put on PYTHONPATH for that test only).

It applies tests.train_runner.fast_in_memory_datasets, so the real qlora_adapter path prepares
its tiny data set without pickling the 33 MB tokenizer; nothing else changes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

from tests.train_runner import fast_in_memory_datasets  # noqa: E402

fast_in_memory_datasets()
