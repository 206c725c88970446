"""TR-MMLU and TurkishMMLU from the Hugging Face Hub (or a local folder in the Hub's layout)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tr_gemma.errors import PipelineInputError
from tr_gemma.evaluation.questions import canonical_questions
from tr_gemma.hub import probe_repo

TR_MMLU_ID = "alibayram/turkish_mmlu"
TURKISHMMLU_ID = "AYueksel/TurkishMMLU"


def load_hub_questions(dataset_id: str, revision: str, token: str | None, test_split: str, dev_split: str | None,
                       timeout_s: float, alternatives: str) -> tuple[pd.DataFrame, str]:
    """Canonical questions of every config of the data set, test split (and dev when present)."""
    import datasets

    local = Path(dataset_id).is_dir()
    sha = "local" if local else probe_repo(dataset_id, revision, "dataset", token, timeout_s, alternatives).sha
    kwargs = {} if local else {"revision": sha, "token": token}
    configs = datasets.get_dataset_config_names(dataset_id, **kwargs) or [None]
    frames = []
    for config in configs:
        loaded = datasets.load_dataset(dataset_id, config, **kwargs)
        if test_split not in loaded:
            raise PipelineInputError(
                f"{dataset_id}{'/' + config if config else ''} has no split '{test_split}' "
                f"(found {sorted(loaded)}); set tr_mmlu_questions config test_split"
            )
        section = config if config not in (None, "default") else None
        frames.append(canonical_questions(loaded[test_split].to_pandas(), f"{dataset_id}:{test_split}", "test", section))
        if dev_split and dev_split in loaded:
            frames.append(canonical_questions(loaded[dev_split].to_pandas(), f"{dataset_id}:{dev_split}", "dev", section))
    return pd.concat(frames, ignore_index=True), sha
