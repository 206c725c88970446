"""Stage 5: TR-MMLU evaluation of the base and fine-tuned models, the promotion gate, and the
contamination guard on the training data."""

import json
import time
from typing import Literal, Optional

import dagster as dg
import pandas as pd
from pydantic import Field

from assets._retry import HUB_RETRY

from assets._metadata import markdown_table
from assets.base_model import read_base_model_manifest
from assets.partitions import model_sizes
from resources.artifacts import ArtifactStore
from resources.gpu import GpuResource
from resources.huggingface import HuggingFaceHub
from tr_gemma.atomic_io import atomic_file
from tr_gemma.errors import PipelineInputError, SourceUnavailableError

QUESTION_SOURCES = ("embedded", "tr_mmlu", "turkishmmlu", "path")


class QuestionsConfig(dg.Config):
    source: Literal["embedded", "tr_mmlu", "turkishmmlu", "path"] = Field(
        default="embedded",
        description="embedded: the TR-MMLU-style sample shipped with the project; tr_mmlu: alibayram/turkish_mmlu "
        "(gated, HF_TOKEN); turkishmmlu: AYueksel/TurkishMMLU; path: local file(s) in either schema.",
    )
    revision: str = Field(default="main", description="Hub revision (the resolved sha is the data version).")
    test_split: str = Field(default="", description="Split to score; empty = 'mmlu' for TR-MMLU, 'test' for TurkishMMLU.")
    dev_split: str = Field(default="dev", description="Split for few-shot examples when the data set has one.")
    dataset_id: str = Field(default="", description="Override the Hub id (or a local folder in the Hub layout).")
    path: str = Field(default="", description="Questions file (source=path): JSON, JSONL, parquet or CSV.")
    dev_path: str = Field(default="", description="Optional few-shot file (source=path).")


@dg.asset(
    group_name="evaluation",
    kinds={"huggingface", "pandas"},
    owners=["team:ml-platform"],
    code_version="1",
    retry_policy=HUB_RETRY,
)
def tr_mmlu_questions(context: dg.AssetExecutionContext, config: QuestionsConfig, hf_hub: HuggingFaceHub) -> dg.Output[pd.DataFrame]:
    """Multiple-choice questions (TR-MMLU or TurkishMMLU) in one schema: section, question,
    choices (4 or 5), answer (0-based), split (test, or dev for few-shot examples).

    Default: a TR-MMLU-schema sample written for this project (142 questions in 11 sections,
    4- and 5-option questions, balanced answer positions). When a source has no dev split, the
    first two questions of each section become few-shot examples and leave the test set.
    """
    from tr_gemma.embedded_data import DATA_DIR, file_digest
    from tr_gemma.evaluation.questions import read_question_file, split_dev_from_test

    try:
        if config.source == "embedded":
            files = [DATA_DIR / "tr_mmlu_sample.jsonl", DATA_DIR / "tr_mmlu_sample_dev.jsonl"]
            questions = pd.concat([read_question_file(files[0]), read_question_file(files[1], "dev")], ignore_index=True)
            version = file_digest(files[0]) + "+" + file_digest(files[1])[7:]
        elif config.source == "path":
            if not config.path:
                raise PipelineInputError("tr_mmlu_questions: source='path' needs config 'path'.")
            parts = [read_question_file(config.path)] + ([read_question_file(config.dev_path, "dev")] if config.dev_path else [])
            questions, version = pd.concat(parts, ignore_index=True), file_digest(config.path)
        else:
            questions, version = _hub_questions(config, hf_hub)
    except SourceUnavailableError as exc:
        raise dg.Failure(f"tr_mmlu_questions source '{config.source}' failed. {exc}", allow_retries=exc.retryable) from None
    except PipelineInputError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    questions = split_dev_from_test(questions)
    test = questions[questions["split"] == "test"]
    per_section = test.groupby("section").agg(
        questions=("question", "size"), four_options=("choices", lambda c: int((c.map(len) == 4).sum())),
        five_options=("choices", lambda c: int((c.map(len) == 5).sum()))).reset_index()
    positions = test["answer"].map(lambda a: "ABCDE"[a]).value_counts().sort_index()
    return dg.Output(
        questions,
        data_version=dg.DataVersion(version),
        metadata={
            "test_questions": len(test),
            "dev_questions": int((questions["split"] == "dev").sum()),
            "sections": int(test["section"].nunique()),
            "source": config.source,
            "revision": version,
            "per_section": dg.MetadataValue.md(markdown_table(per_section)),
            "answer_positions": dg.MetadataValue.json({k: int(v) for k, v in positions.items()}),
        },
    )


def _hub_questions(config: QuestionsConfig, hf_hub: HuggingFaceHub):
    from tr_gemma.evaluation.hub_questions import TR_MMLU_ID, TURKISHMMLU_ID, load_hub_questions

    dataset_id = config.dataset_id or (TR_MMLU_ID if config.source == "tr_mmlu" else TURKISHMMLU_ID)
    test_split = config.test_split or ("mmlu" if config.source == "tr_mmlu" else "test")
    others = " or ".join(f"'{s}'" for s in QUESTION_SOURCES if s != config.source)
    alternatives = f"Other sources: set tr_mmlu_questions config source to {others}."
    hf_hub.refuse_if_offline(f"dataset '{dataset_id}'", alternatives)
    return load_hub_questions(dataset_id, config.revision, hf_hub.token, test_split, config.dev_split,
                              hf_hub.timeout_s, alternatives)


class ContaminationConfig(dg.Config):
    ngram: int = Field(default=8, ge=4, description="Words per n-gram shared with a benchmark question to count as a leak.")


@dg.asset_check(
    asset="gemma_chat_dataset",
    additional_deps=["tr_mmlu_questions"],
    blocking=True,
    description="No training example shares a word n-gram with a TR-MMLU question or its options "
    "(NFC, Turkish-aware lower-casing). Warns (without blocking) while no questions are materialized.",
)
def no_benchmark_contamination(
    config: ContaminationConfig, artifacts: ArtifactStore, gemma_chat_dataset: pd.DataFrame
) -> dg.AssetCheckResult:
    from tr_gemma.evaluation.contamination import find_leaks

    questions_path = artifacts.folder(dg.AssetKey("tr_mmlu_questions")) / "data.parquet"
    if not questions_path.is_file():
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN,
            description="Not checked: tr_mmlu_questions has not been materialized yet.",
        )
    tr_mmlu_questions = pd.read_parquet(questions_path)

    training = [(int(r), m[0]["content"] + "\n" + m[1]["content"])
                for r, m in zip(gemma_chat_dataset["row_id"], gemma_chat_dataset["messages"])]
    questions = [q + " " + " ".join(c) for q, c in zip(tr_mmlu_questions["question"], tr_mmlu_questions["choices"])]
    leaks = find_leaks(training, questions, config.ngram)
    listing = pd.DataFrame([{"row_id": l.row_id, "question": l.question_index, "shared_ngram": l.ngram} for l in leaks[:20]])
    return dg.AssetCheckResult(
        passed=not leaks,
        metadata={"leaking_rows": len(leaks), "ngram": config.ngram,
                  "offending_rows": dg.MetadataValue.md(markdown_table(listing) if leaks else "none")},
        description=None if not leaks else f"{len(leaks)} training rows overlap the benchmark, e.g. row {leaks[0].row_id}",
    )


class ScoresConfig(dg.Config):
    num_fewshot: int = Field(default=0, ge=0, le=5, description="Few-shot examples from the dev split (0 = zero-shot).")
    gate_margin: float = Field(
        default=0.02, ge=-1, le=1,
        description="Gate: fine-tuned >= base - margin (a negative margin demands an improvement).")
    gate_mode: Literal["blocking", "warning"] = Field(default="blocking", description="A failed gate blocks promotion, or only warns.")
    load_in_4bit: bool = Field(default=True, description="Score both models in NF4 4-bit (as trained).")
    batch_size: str = Field(default="auto", description="lm-eval batch size ('auto' on a GPU).")
    limit: Optional[int] = Field(default=None, description="Score only the first N questions (smoke runs).")


@dg.asset(
    partitions_def=model_sizes,
    deps=["tr_mmlu_questions", "qlora_adapter", "base_model"],
    group_name="evaluation",
    kinds={"pytorch", "huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
    pool="gpu",
    check_specs=[dg.AssetCheckSpec("fine_tuned_not_worse", asset="tr_mmlu_scores", blocking=True,
                                   description="Promotion gate: fine-tuned accuracy >= base accuracy - margin.")],
)
def tr_mmlu_scores(context: dg.AssetExecutionContext, config: ScoresConfig, gpu: GpuResource, artifacts: ArtifactStore):
    """TR-MMLU accuracy of the base model and of base + adapter, scored by lm-evaluation-harness
    with identical settings (prompt `Soru: ...\\nA. ...\\nCevap:`, loglikelihood of the option
    letters, acc and acc_norm, one BOS per request, same 4-bit setting). Overall and per-section
    accuracy with 95% Wilson intervals, the delta, the lm-eval version and task hash; every
    question's prompt, option log-likelihoods and answers are saved for audit.
    """
    size = context.partition_key
    manifest = read_base_model_manifest(artifacts, size)
    adapter = artifacts.folder(dg.AssetKey("qlora_adapter"), size) / "adapter"
    questions = artifacts.folder(dg.AssetKey("tr_mmlu_questions")) / "data.parquet"
    for needed, asset in ((adapter, "qlora_adapter"), (questions, "tr_mmlu_questions")):
        if not needed.exists():
            raise dg.Failure(f"{asset} has not been materialized ({needed} missing).", allow_retries=False)
    device = gpu.resolve_device()
    output_dir = artifacts.folder(context.asset_key, size)
    extras = {
        "model_dir": manifest["path"], "adapter_dir": str(adapter), "questions_path": str(questions),
        "output_dir": str(output_dir), "num_fewshot": config.num_fewshot, "load_in_4bit": config.load_in_4bit,
        "batch_size": config.batch_size, "device": device, "limit": config.limit,
    }
    with gpu.reserved(context):
        yield from gpu.run_module(context, "tr_gemma.evaluation.pipes_main", extras).get_results()

    scores = json.loads((output_dir / "scores.json").read_text())
    base, tuned = scores["base"]["accuracy"], scores["fine_tuned"]["accuracy"]
    passed = tuned >= base - config.gate_margin
    yield dg.AssetCheckResult(
        check_name="fine_tuned_not_worse",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR if config.gate_mode == "blocking" else dg.AssetCheckSeverity.WARN,
        metadata={"base": base, "fine_tuned": tuned, "delta": tuned - base, "margin": config.gate_margin},
    )
    with atomic_file(output_dir / "gate.json") as staging:
        staging.write_text(json.dumps({"passed": passed, "margin": config.gate_margin, "base": base, "fine_tuned": tuned}))


@dg.asset(
    partitions_def=model_sizes,
    deps=["tr_mmlu_scores"],
    group_name="evaluation",
    kinds={"json"},
    owners=["team:ml-platform"],
    code_version="1",
)
def promoted_adapter(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dg.MaterializeResult:
    """The registry entry of the adapter that passed the TR-MMLU gate for this size
    (`artifacts/registry/<size>.json`). A failed blocking gate stops the run before this asset;
    a failed warning-mode gate leaves the previous entry in place."""
    size = context.partition_key
    scores_dir = artifacts.folder(dg.AssetKey("tr_mmlu_scores"), size)
    gate = json.loads((scores_dir / "gate.json").read_text())
    registry = artifacts.folder(dg.AssetKey("registry")) / f"{size}.json"
    adapter = str(artifacts.folder(dg.AssetKey("qlora_adapter"), size) / "adapter")
    if gate["passed"]:
        entry = {"size": size, "adapter": adapter, "base_accuracy": gate["base"], "fine_tuned_accuracy": gate["fine_tuned"],
                 "run_id": context.run_id, "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with atomic_file(registry) as staging:
            staging.write_text(json.dumps(entry, indent=2))
    return dg.MaterializeResult(metadata={
        "promoted": gate["passed"], "registry_entry": dg.MetadataValue.path(str(registry)),
        "fine_tuned_accuracy": gate["fine_tuned"], "base_accuracy": gate["base"],
    })
