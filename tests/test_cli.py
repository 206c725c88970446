"""The `dagster` CLI as users call it (subprocesses, a temporary DAGSTER_HOME and working dir)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import instruction_row, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def workdir(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return tmp_path


def dagster(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(workdir / "dagster_home")}
    done = subprocess.run([DAGSTER, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def materialized(done: subprocess.CompletedProcess) -> list[str]:
    import re

    return sorted(set(re.findall(r"ASSET_MATERIALIZATION - Materialized value (\w+)", done.stdout + done.stderr)))


def test_listing_definitions(workdir):
    done = dagster(workdir, "asset", "list", "-m", "pipelines.definitions")
    for key in ("raw_instructions", "gemma_chat_dataset", "qlora_adapter", "tr_mmlu_scores"):
        assert key in done.stdout


def test_materialize_one_asset_a_selection_and_a_partition(workdir, gemma_tokenizer_dir):
    one = dagster(workdir, "asset", "materialize", "-m", "pipelines.definitions", "--select", "raw_instructions")
    assert materialized(one) == ["raw_instructions"]
    selection = dagster(workdir, "asset", "materialize", "-m", "pipelines.definitions",
                        "--select", "clean_instructions,gemma_chat_dataset")
    assert materialized(selection) == ["clean_instructions", "gemma_chat_dataset"]
    partition = dagster(workdir, "asset", "materialize", "-m", "pipelines.definitions",
                        "--select", "base_model", "--partition", "270m")
    assert materialized(partition) == ["base_model"]
    manifest = json.loads((workdir / "artifacts" / "base_model" / "270m" / "checkpoint.json").read_text())
    assert manifest["vocab_size"] == 262_144


def test_launching_a_job_with_a_yaml_run_config(workdir, gemma_tokenizer_dir):
    data = write_jsonl(workdir / "veri.jsonl", [instruction_row(instruction=f"Soru {i}?", output=f"Cevap {i}.") for i in range(30)])
    config = workdir / "run.yaml"
    config.write_text(
        "ops:\n"
        "  raw_instructions:\n"
        "    config:\n"
        "      source: path\n"
        f"      path: {data}\n"
        "  gemma_chat_dataset:\n"
        "    config:\n"
        "      eval_fraction: 0.1\n"
    )
    done = dagster(workdir, "job", "execute", "-m", "pipelines.definitions", "-j", "data_job", "-c", str(config))
    output = done.stdout + done.stderr
    assert "RUN_SUCCESS" in output
    for asset in ("raw_instructions", "clean_instructions", "gemma_chat_dataset", "token_efficiency", "tr_mmlu_questions"):
        assert asset in materialized(done)
    chat = __import__("pandas").read_parquet(workdir / "artifacts" / "gemma_chat_dataset" / "data.parquet")
    assert len(chat) == 30 and (chat["split"] == "eval").sum() == 3
