"""Benchmark: raw -> clean -> chat on a 52,002-row corpus (the size of alpaca-gpt4-tr).

The corpus repeats the embedded sample with a numbered variation per copy (so rows stay unique).
It times the three Dagster assets materialized in one run (in-process, as `dg.materialize` runs
them), and, in the same process, a bare baseline doing only the unavoidable work: read the JSONL,
render each row, tokenize every rendered text once. Target: the assets under 20 s on 2 CPU cores.

    .venv/bin/python -m benchmarks.data_pipeline [--rows 52002]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.chat_dataset import gemma_chat_dataset
from benchmarks.corpus import synthetic_corpus
from assets.instructions import clean_instructions, raw_instructions
from resources import build_resources
from tr_gemma.chat_format import render, to_messages
from tr_gemma.checkpoints import default_cache_dir, ensure_embedded_tokenizer


def build_corpus(rows: int, folder: Path) -> Path:
    path = folder / "corpus.jsonl"
    synthetic_corpus(rows).to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    starts, seconds = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key] = round(entry.timestamp - starts[event.step_key], 2)
    return seconds


def bare_baseline(path: Path, tokenizer) -> float:
    started = time.perf_counter()
    frame = pd.read_json(path, lines=True, dtype=False)
    texts = [
        render(to_messages(s, i, x, o))
        for s, i, x, o in zip(frame["system-turkish"], frame["instruction-turkish"], frame["input-turkish"], frame["output-turkish"])
    ]
    tokenizer(texts, add_special_tokens=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=52_002)
    parser.add_argument("--out", default="benchmarks/results/data_pipeline.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ensure_embedded_tokenizer(default_cache_dir()))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus(args.rows, Path(tmp))
        chars = int(pd.read_json(corpus, lines=True)["output-turkish"].str.len().mean())
        baseline = bare_baseline(corpus, tokenizer)
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        result = dg.materialize(
            [raw_instructions, clean_instructions, gemma_chat_dataset],
            resources=build_resources(artifacts_root=str(Path(tmp) / "artifacts")),
            run_config={"ops": {"raw_instructions": {"config": {"source": "path", "path": str(corpus)}}}},
            instance=instance,
        )
        total = time.perf_counter() - started
    assert result.success
    report = {
        "benchmark": "raw_instructions -> clean_instructions -> gemma_chat_dataset",
        "rows": args.rows,
        "mean_output_chars": chars,
        "assets_seconds": round(total, 2),
        "step_seconds": step_seconds(instance, result.run_id),
        "bare_baseline_seconds": round(baseline, 2),
        "ratio_to_baseline": round(total / baseline, 2),
        "target_seconds": 20,
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        "date": date.today().isoformat(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
