"""The shipped lm-eval tasks (one per benchmark schema), instantiated for one run's questions."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

TEMPLATE_DIR = Path(__file__).parent / "tasks"
TASKS = {"tr_mmlu": "tr_mmlu.yaml", "turkishmmlu": "turkishmmlu_local.yaml"}
TASK_NAMES = {"tr_mmlu": "tr_mmlu", "turkishmmlu": "turkishmmlu_local"}


def task_hash(schema: str = "tr_mmlu") -> str:
    """Hash of the task definition (YAML template + prompt functions), recorded with scores."""
    digest = hashlib.sha256()
    for name in (TASKS[schema], "utils.py"):
        digest.update((TEMPLATE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def schema_of(questions: pd.DataFrame) -> str:
    schemas = set(questions["schema"]) if "schema" in questions else {"tr_mmlu"}
    if len(schemas) != 1:
        raise ValueError(f"questions mix benchmark schemas {sorted(schemas)}; score them separately")
    return schemas.pop()


def native_rows(questions: pd.DataFrame, schema: str) -> pd.DataFrame:
    """Canonical questions written back in the benchmark's own column names."""
    if schema == "turkishmmlu":
        return pd.DataFrame({"subject": questions["section"], "question": questions["question"],
                             "choices": questions["choices"], "answer": questions["answer"].map(lambda i: "ABCDE"[i])})
    return pd.DataFrame({"bolum": questions["section"], "soru": questions["question"],
                         "secenekler": questions["choices"], "cevap": questions["answer"]})


def write_task(questions: pd.DataFrame, folder: Path) -> tuple[Path, str]:
    """Write test/dev parquet files and the task YAML; returns the include path and task name."""
    schema = schema_of(questions)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("test", "dev"):
        part = questions[questions["split"] == split].reset_index(drop=True)
        files[split] = folder / f"{split}.parquet"
        native_rows(part, schema).to_parquet(files[split], index=False)
    template = (TEMPLATE_DIR / TASKS[schema]).read_text(encoding="utf-8")
    task_yaml = template.replace("{test_file}", str(files["test"])).replace("{dev_file}", str(files["dev"]))
    (folder / TASKS[schema]).write_text(task_yaml, encoding="utf-8")
    shutil.copy2(TEMPLATE_DIR / "utils.py", folder / "utils.py")
    return folder, TASK_NAMES[schema]
