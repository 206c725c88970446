"""Shared fixtures: the real Gemma 3 tokenizer (converted once per cache) and isolated resources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def private_device_locks(tmp_path_factory):
    """Device locks of this test session only (a real run on this host must not make tests wait);
    set in the environment so the CLI processes that tests start use them too."""
    import os

    # resources.device_lock.LOCK_DIR_ENV, spelled out: importing `resources` needs dagster, which
    # the GPU machine running `-m gpu` tests does not have (tests/test_device_lock.py checks the name)
    LOCK_DIR_ENV = "TR_GEMMA_DEVICE_LOCK_DIR"
    before = os.environ.get(LOCK_DIR_ENV)
    os.environ[LOCK_DIR_ENV] = str(tmp_path_factory.mktemp("device_locks"))
    yield
    if before is None:
        os.environ.pop(LOCK_DIR_ENV, None)
    else:
        os.environ[LOCK_DIR_ENV] = before


@pytest.fixture(scope="session")
def gemma_tokenizer_dir() -> Path:
    import os

    from tr_gemma.checkpoints import default_cache_dir, ensure_embedded_tokenizer

    if os.environ.get("TR_GEMMA_TEST_TOKENIZER_DIR"):  # the GPU machine gets the converted tokenizer carried in
        return Path(os.environ["TR_GEMMA_TEST_TOKENIZER_DIR"])
    return ensure_embedded_tokenizer(default_cache_dir())


@pytest.fixture(scope="session")
def gemma_tokenizer(gemma_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gemma_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, gemma_tokenizer_dir) -> Path:
    """A tiny random Gemma3ForCausalLM with the real tokenizer (trains in seconds on the CPU)."""
    from tests.tiny_gemma import save_tiny_text_model

    return save_tiny_text_model(tmp_path_factory.mktemp("tiny") / "model", gemma_tokenizer_dir)


@pytest.fixture(scope="session")
def chat_parquet(tmp_path_factory) -> Path:
    """A small chat data set in gemma_chat_dataset's format (24 train, 4 eval rows)."""
    import pandas as pd

    from tr_gemma.chat_format import to_messages

    rows = []
    for i in range(28):
        messages = to_messages("", f"{i} ile {i + 1} toplamı kaçtır?", "", f"{i} + {i + 1} = {2 * i + 1} eder.")
        rows.append({"row_id": i, "split": "eval" if i % 7 == 0 else "train", "messages": messages, "text": ""})
    path = tmp_path_factory.mktemp("chat") / "data.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.fixture
def resources(tmp_path):
    """Project resources writing into a temporary artifact folder."""
    from resources import build_resources

    return build_resources(artifacts_root=str(tmp_path / "artifacts"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def instruction_row(**turkish) -> dict:
    """A row in the alpaca-gpt4-tr schema; Turkish fields given by short names."""
    row = {
        "instruction": "An English instruction.",
        "input": "",
        "output": "An English answer.",
        "instruction-turkish": "Bir talimat yaz.",
        "input-turkish": "",
        "output-turkish": "Bir cevap.",
        "system": "",
        "system-turkish": "",
    }
    for key, value in turkish.items():
        row[{"system": "system-turkish"}.get(key, f"{key}-turkish")] = value
    return row


def step_failure_message(result) -> str:
    """The error message of the first failed step of a `dg.materialize` result."""
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return event.step_failure_data.error.message
