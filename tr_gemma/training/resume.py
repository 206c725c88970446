"""Choosing a checkpoint to resume from: only complete ones, only ones of the same job.

A checkpoint is complete when it holds `trainer_state.json` (the Trainer writes it last) and the
adapter weights. Incomplete ones (a run killed mid-save) are renamed aside, never loaded. A
checkpoint folder written for another recipe, data version or base model is set aside too, so a
retrain on new data never resumes an old run, and so is one without this pipeline's job record.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
JOB_FILE = "job.json"


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / "trainer_state.json").is_file() and (checkpoint / "adapter_model.safetensors").is_file()


def prepare_checkpoint_dir(folder: Path, job_fingerprint: str) -> tuple[Path | None, list[str]]:
    """The checkpoint to resume from (or None) and notes on what was set aside."""
    folder.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    job_file = folder / JOB_FILE
    if job_file.is_file() and json.loads(job_file.read_text()).get("fingerprint") != job_fingerprint:
        retired = folder.with_name(f"{folder.name}.previous-job-{int(time.time())}")
        folder.rename(retired)
        folder.mkdir()
        notes.append(f"checkpoints of a different job moved to {retired.name}")
    elif not job_file.is_file() and any(_CHECKPOINT.match(p.name) for p in folder.iterdir()):
        # This pipeline writes job.json before its first checkpoint: checkpoints without it came
        # from elsewhere (copied in, another tool) and are never resumed from.
        retired = folder.with_name(f"{folder.name}.unknown-origin-{int(time.time())}")
        folder.rename(retired)
        folder.mkdir()
        notes.append(f"checkpoints not written by this pipeline (no {JOB_FILE}) moved to {retired.name}")
    job_file.write_text(json.dumps({"fingerprint": job_fingerprint}))

    candidates = sorted(
        (p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)),
        key=lambda p: int(_CHECKPOINT.match(p.name).group(1)),
    )
    resume = None
    for checkpoint in candidates:
        if is_complete(checkpoint):
            resume = checkpoint
        else:
            aside = checkpoint.with_name(f"{checkpoint.name}.incomplete-{int(time.time())}")
            checkpoint.rename(aside)
            notes.append(f"incomplete {checkpoint.name} set aside as {aside.name}")
    return resume, notes


def latest_complete(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`, read-only (for ranks other than 0)."""
    if not folder.is_dir():
        return None
    complete = [p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name) and is_complete(p)]
    return max(complete, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)), default=None)
