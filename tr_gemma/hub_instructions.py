"""Loading `malhajar/alpaca-gpt4-tr` (or a data set laid out the same way) with `datasets`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from tr_gemma.hub import DEFAULT_TIMEOUT_S, probe_repo

HUB_DATASET_ID = "malhajar/alpaca-gpt4-tr"
# Latest commit seen on the Hub (13 Mar 2024); the full sha it resolves to is recorded as the
# asset's data version on every load.
HUB_DATASET_REVISION = "a6d4c80"
LICENCE_NOTE = (
    "malhajar/alpaca-gpt4-tr declares no licence; it is a Turkish translation of GPT-4 output in "
    "the alpaca-gpt4 line (CC BY-NC 4.0): treat it and models trained on it as non-commercial."
)


def load_hub_instructions(
    dataset_id: str,
    revision: str,
    token: str | None,
    split: str = "train",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    alternatives: str = "",
) -> tuple[pd.DataFrame, str]:
    """Return the split as a DataFrame and the commit sha (or content hash) it came from.

    `dataset_id` may also be a local folder holding a data set in the Hub's layout (what
    `push_to_hub` writes: `data/<split>-*.parquet`), which is how tests and air-gapped mirrors use
    the same code path.
    """
    import datasets

    local = Path(dataset_id)
    if local.is_dir():
        version = _folder_digest(local)
        dataset = datasets.load_dataset(str(local), split=split)
    else:
        resolved = probe_repo(dataset_id, revision, "dataset", token, timeout_s, alternatives)
        version = resolved.sha
        dataset = datasets.load_dataset(dataset_id, revision=resolved.sha, token=token, split=split)
    return dataset.to_pandas(), version


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(file.read_bytes())
    return "sha256:" + digest.hexdigest()[:16]
