"""Benchmark: the token-efficiency analysis on a 52,002-row corpus with every offline tokenizer.

Times `tr_gemma.token_efficiency.analyse` (all metrics: words, fertility, continued words,
compression, parity) over the Turkish and English fields of the corpus, and, in the same
process on the same texts, a bare baseline: each tokenizer's batched encode of every text,
nothing else. Targets (2 CPU cores): analysis under 60 s, analysis / baseline under 1.3.

    .venv/bin/python -m benchmarks.token_efficiency [--rows 52002]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

from benchmarks.corpus import synthetic_corpus
from tr_gemma.cleaning import clean_instructions
from tr_gemma.token_efficiency import Corpus, Tokenizer, analyse, gemma_tokenizer_handle


def corpus_of(rows: int) -> Corpus:
    raw = synthetic_corpus(rows)
    clean = clean_instructions(raw).clean
    texts = {(f, "tr"): clean[f].tolist() for f in ("instruction", "input", "output")}
    positions = clean["row_id"].to_numpy()
    for field in ("instruction", "input", "output"):
        texts[(field, "en")] = raw[field].to_numpy()[positions].tolist()
    return Corpus("dataset", texts)


def tokenizers() -> list[Tokenizer]:
    from transformers import AutoTokenizer

    from tr_gemma.checkpoints import default_cache_dir, ensure_embedded_tokenizer
    from tr_gemma.comparator_tokenizers import load_offline_comparators

    handles = [gemma_tokenizer_handle(AutoTokenizer.from_pretrained(ensure_embedded_tokenizer(default_cache_dir())))]
    comparators, unavailable = load_offline_comparators()
    assert not unavailable, unavailable
    handles += [Tokenizer(c.name, c.label, c.vocab_size, c.encode_batch, c.verified_exact, c.verification) for c in comparators]
    return handles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=52_002)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/token_efficiency.json")
    args = parser.parse_args()
    corpus = corpus_of(args.rows)
    handles = tokenizers()
    texts = [t for group in corpus.texts.values() for t in group if t]

    baseline, analysis = [], []
    for _ in range(args.repeats):  # alternate so both see the same machine state
        started = time.perf_counter()
        for tokenizer in handles:
            tokenizer.encode_batch(texts)
        baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        table = analyse([corpus], handles).table
        analysis.append(time.perf_counter() - started)

    report = {
        "benchmark": "token-efficiency analysis vs bare batched encode, same texts and tokenizers",
        "rows": args.rows,
        "texts": len(texts),
        "characters": sum(map(len, texts)),
        "tokenizers": [t.label for t in handles],
        "analysis_seconds": round(min(analysis), 2),
        "bare_encode_seconds": round(min(baseline), 2),
        "ratio": round(min(analysis) / min(baseline), 3),
        "targets": {"analysis_seconds": 60, "ratio": 1.3},
        "fertility_tr": {r.tokenizer: round(r.fertility, 3) for r in
                         table[(table.language == "tr") & (table.field == "output")].itertuples()},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "date": date.today().isoformat(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
