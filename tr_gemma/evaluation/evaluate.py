"""Scoring Gemma 3 (base, and base + LoRA adapter) on TR-MMLU-style questions with lm-eval.

Both models are scored under identical settings: same checkpoint, same 4-bit quantization and
compute dtype, same prompts, BOS added exactly once per request. lm-eval 0.4.13 passes
`load_in_4bit` to `from_pretrained` as a bare keyword, which transformers 5 no longer accepts, so
the model is built here with a BitsAndBytesConfig and handed to lm-eval's HF model (HFLM) as an
instance; the adapter is attached with `PeftModel.from_pretrained`, as HFLM's `peft=` does.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tr_gemma.evaluation.lm_eval_task import schema_of, task_hash, write_task


@dataclass
class EvalSettings:
    num_fewshot: int = 0
    load_in_4bit: bool = True
    batch_size: str = "auto"  # "auto" on a GPU; a number on the CPU
    device: str = "cpu"
    limit: int | None = None


@dataclass
class ModelScore:
    label: str
    accuracy: float
    accuracy_norm: float
    n: int
    ci_low: float
    ci_high: float
    per_section: dict[str, dict] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    bos_per_request: int = -1


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy (well behaved for small n and extreme rates)."""
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def load_model(model_dir: Path, adapter_dir: Path | None, settings: EvalSettings):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    ) if settings.load_in_4bit else None
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=quantization, dtype=torch.bfloat16 if settings.load_in_4bit else torch.float32,
        device_map={"": 0} if settings.device == "cuda" else {"": "cpu"},
        use_safetensors=True,  # never unpickle a .bin checkpoint (pickles can run code)
    )
    if adapter_dir is not None:
        from peft import PeftModel

        if not (Path(adapter_dir) / "adapter_model.safetensors").is_file():
            raise FileNotFoundError(f"{adapter_dir} has no adapter_model.safetensors; only safetensors adapters are loaded")
        model = PeftModel.from_pretrained(model, adapter_dir)
    return model.eval()


def lm_eval_model(model, tokenizer, settings: EvalSettings):
    from lm_eval.models.huggingface import HFLM

    # lm-eval's "auto" probes GPU memory; on the CPU use a fixed batch instead.
    batch = 8 if settings.batch_size == "auto" and settings.device != "cuda" else settings.batch_size
    return HFLM(pretrained=model, tokenizer=tokenizer, add_bos_token=True, batch_size=batch, max_batch_size=64)


def run_task(lm, questions: pd.DataFrame, settings: EvalSettings, workdir: Path) -> tuple[dict, str]:
    """lm-eval results (with per-sample logs) and the name of the task that produced them."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    include, task = write_task(questions, workdir / "task")
    return simple_evaluate(
        model=lm, tasks=[task], num_fewshot=settings.num_fewshot,
        task_manager=TaskManager(include_path=str(include), include_defaults=False),
        log_samples=True, limit=settings.limit, bootstrap_iters=0, random_seed=0, numpy_random_seed=0,
        torch_random_seed=0, fewshot_random_seed=0,
    ), task


def _canonical_doc(doc: dict) -> dict:
    """Section, question and 0-based answer of a logged doc of either schema."""
    if "soru" in doc:
        return {"section": doc["bolum"], "question": doc["soru"], "answer": int(doc["cevap"])}
    return {"section": doc["subject"], "question": doc["question"], "answer": "ABCDE".index(doc["answer"])}


def score(results: dict, task: str, label: str, bos_per_request: int) -> ModelScore:
    """Overall and per-section accuracy plus the per-question audit log from lm-eval's samples."""
    samples = results["samples"][task]
    audit, by_section = [], {}
    for sample in samples:
        doc = _canonical_doc(sample["doc"])
        loglikelihoods = [float(r[0]) for r in sample["filtered_resps"]]
        chosen = max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__)
        correct = bool(sample["acc"])
        audit.append({
            "section": doc["section"], "question": doc["question"], "prompt": sample["arguments"][0][0],
            "choice_loglikelihoods": loglikelihoods, "chosen": "ABCDE"[chosen], "correct_answer": "ABCDE"[doc["answer"]],
            "is_correct": correct, "acc_norm": float(sample["acc_norm"]),
        })
        section = by_section.setdefault(doc["section"], {"n": 0, "correct": 0})
        section["n"] += 1
        section["correct"] += int(correct)
    n = len(audit)
    correct = sum(a["is_correct"] for a in audit)
    for section in by_section.values():
        section["accuracy"] = section["correct"] / section["n"]
    low, high = wilson_interval(correct, n)
    metrics = results["results"][task]
    return ModelScore(label=label, accuracy=metrics["acc,none"], accuracy_norm=metrics["acc_norm,none"], n=n,
                      ci_low=low, ci_high=high, per_section=by_section, samples=audit, bos_per_request=bos_per_request)


def bos_count(lm, questions: pd.DataFrame) -> int:
    """BOS tokens in the encoding lm-eval uses for the first prompt (must be exactly 1)."""
    from tr_gemma.evaluation.tasks_utils_loader import prompt

    first = questions[questions["split"] == "test"].iloc[0]
    ids = lm.tok_encode(prompt(first["question"], first["choices"]))
    return ids.count(lm.tokenizer.bos_token_id)


def evaluate_base_and_adapter(
    model_dir: Path, adapter_dir: Path | None, questions: pd.DataFrame, settings: EvalSettings, log=print
) -> tuple[ModelScore, ModelScore | None, dict]:
    """Score the base model, then base + adapter, with identical settings."""
    import lm_eval
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, adapter in (("base", None), ("fine_tuned", adapter_dir)):
            if label == "fine_tuned" and adapter is None:
                scores.append(None)
                continue
            log(f"Scoring the {label} model with lm-eval {lm_eval.__version__} ...")
            lm = lm_eval_model(load_model(model_dir, adapter, settings), tokenizer, settings)
            bos = bos_count(lm, questions)
            results, task = run_task(lm, questions, settings, Path(tmp) / label)
            scores.append(score(results, task, label, bos))
            log(f"{label}: accuracy {scores[-1].accuracy:.4f} on {scores[-1].n} questions")
            del lm
    schema = schema_of(questions)
    info = {"lm_eval_version": lm_eval.__version__, "task": schema, "task_hash": task_hash(schema),
            "num_fewshot": settings.num_fewshot, "load_in_4bit": settings.load_in_4bit}
    return scores[0], scores[1], info


def write_audit(path: Path, scores: list[ModelScore]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for model_score in scores:
            for row in model_score.samples:
                handle.write(json.dumps({"model": model_score.label, **row}, ensure_ascii=False) + "\n")
