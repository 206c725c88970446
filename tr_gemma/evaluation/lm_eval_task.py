"""The shipped lm-eval task, instantiated for one run's question files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

TASK_NAME = "tr_mmlu"
TEMPLATE_DIR = Path(__file__).parent / "tasks"


def task_hash() -> str:
    """Hash of the task definition (YAML template + prompt functions), recorded with scores."""
    digest = hashlib.sha256()
    for name in ("tr_mmlu.yaml", "utils.py"):
        digest.update((TEMPLATE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def write_task(questions: pd.DataFrame, folder: Path) -> Path:
    """Write test/dev parquet files and a task YAML pointing at them; returns the include path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("test", "dev"):
        part = questions[questions["split"] == split].reset_index(drop=True)
        if part.empty:
            part = questions[questions["split"] == "test"].head(0)
        files[split] = folder / f"{split}.parquet"
        part.to_parquet(files[split], index=False)
    template = (TEMPLATE_DIR / "tr_mmlu.yaml").read_text(encoding="utf-8")
    task_yaml = template.replace("{test_file}", str(files["test"])).replace("{dev_file}", str(files["dev"]))
    (folder / "tr_mmlu.yaml").write_text(task_yaml, encoding="utf-8")
    shutil.copy2(TEMPLATE_DIR / "utils.py", folder / "utils.py")
    return folder
