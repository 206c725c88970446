"""Samples shipped inside the project so the whole pipeline runs offline on a fresh machine.

All texts were written for this project (no sentence is copied from the real data sets); they
follow the real schemas so the same code paths handle them.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

DATA_DIR = Path(str(files("tr_gemma") / "data"))
INSTRUCTIONS_SAMPLE = DATA_DIR / "instructions_sample.jsonl"


def file_digest(path: Path) -> str:
    """Short content hash used as a data version for files without a Hub revision."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
