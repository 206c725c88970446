"""GPU benchmark: TR-MMLU scoring through the project's lm-eval path vs raw forward passes.

Same model instance (Gemma 3 1B text shapes, random weights, NF4 4-bit, bf16 compute), same
questions (the embedded TR-MMLU-style sample, each copy made unique), same tokens. The project
path is `tr_gemma.evaluation.evaluate.run_task` (lm-eval's HFLM, batch size auto, logits cache).
The raw path runs one batched forward per question over <bos> + prompt + answer letter and
reads the letter log-probabilities: the least work that produces the same scores.
Target: project throughput >= 70% of raw.

    python -m benchmarks.gpu_eval_throughput --copies 20 --out $OUT/gpu_eval_throughput.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd


def questions(copies: int) -> pd.DataFrame:
    from tr_gemma.embedded_data import DATA_DIR
    from tr_gemma.evaluation.questions import read_question_file

    base = read_question_file(DATA_DIR / "tr_mmlu_sample.jsonl")
    frames = []
    for copy in range(copies):
        frame = base.copy()
        frame["question"] = frame["question"] + f" ({copy + 1})"
        frames.append(frame)
    dev = read_question_file(DATA_DIR / "tr_mmlu_sample_dev.jsonl", "dev")
    return pd.concat(frames + [dev], ignore_index=True)


def raw_forward(model, tokenizer, docs: list[dict], batch_size: int) -> tuple[float, int, list[int]]:
    import torch

    from tr_gemma.evaluation.tasks_utils_loader import prompt

    letters = [tokenizer.encode(" " + letter, add_special_tokens=False)[-1] for letter in "ABCDE"]
    encoded = [tokenizer.encode(prompt(d["question"], d["choices"]), add_special_tokens=True) for d in docs]
    order = sorted(range(len(docs)), key=lambda i: -len(encoded[i]))
    chosen = [0] * len(docs)
    tokens = 0
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
                tokens += len(encoded[i]) + 1
            logits = model(input_ids=ids.cuda(), attention_mask=mask.cuda()).logits
            for row, i in enumerate(batch):
                last = logits[row, len(encoded[i]) - 1].float().log_softmax(-1)
                options = len(docs[i]["choices"])
                chosen[i] = int(torch.argmax(last[letters[:options]]))
    torch.cuda.synchronize()
    return time.perf_counter() - started, tokens, chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch
    from transformers import AutoTokenizer

    from benchmarks.gpu_qlora import random_1b_checkpoint
    from tr_gemma.checkpoints import ensure_embedded_tokenizer, default_cache_dir
    from tr_gemma.evaluation.evaluate import EvalSettings, lm_eval_model, load_model, run_task

    work = Path(tempfile.mkdtemp())
    model_dir = random_1b_checkpoint(work / "1b", ensure_embedded_tokenizer(default_cache_dir()))
    settings = EvalSettings(device="cuda", batch_size="auto", load_in_4bit=True)
    model = load_model(model_dir, None, settings)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = questions(args.copies)
    docs = data[data.split == "test"].to_dict("records")

    raw_forward(model, tokenizer, docs[:64], args.batch)  # warm-up
    raw_seconds, tokens, raw_chosen = raw_forward(model, tokenizer, docs, args.batch)

    lm = lm_eval_model(model, tokenizer, settings)
    torch.cuda.synchronize()
    started = time.perf_counter()
    results, task = run_task(lm, data, settings, work)
    torch.cuda.synchronize()
    project_seconds = time.perf_counter() - started
    project_chosen = []
    for sample in results["samples"][task]:
        lls = [r[0] for r in sample["filtered_resps"]]
        project_chosen.append(max(range(len(lls)), key=lls.__getitem__))
    agreement = sum(a == b for a, b in zip(sorted(project_chosen), sorted(raw_chosen)))
    report = {
        "benchmark": "TR-MMLU scoring: project lm-eval path vs raw batched forward, same model and questions",
        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
        "model": "Gemma 3 1B text shapes, random weights, NF4 4-bit, bf16 compute",
        "questions": len(docs), "tokens": tokens,
        "raw_seconds": raw_seconds, "raw_tokens_per_second": tokens / raw_seconds,
        "project_seconds": project_seconds, "project_tokens_per_second": tokens / project_seconds,
        "project_share_of_raw": raw_seconds / project_seconds, "target_share": 0.7,
        "accuracy_project": results["results"][task]["acc,none"],
        "date": date.today().isoformat(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
