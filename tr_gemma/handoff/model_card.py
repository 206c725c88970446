"""The model card (README.md) of the adapter and of the merged model, built from run metadata.

`build_model_card` is a pure function of the recorded facts: for each upstream asset, the
metadata of its latest materialization (for this model size), the run id, the time and the run
config. Every number in the card comes from there, so the card cannot drift from the run; a fact
that was not recorded is written as *not recorded* (with the asset to materialize), never guessed.
Only what is policy rather than measurement is fixed text: the licence terms and intended use.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Literal

from tr_gemma.hub_instructions import HUB_DATASET_ID

NOT_RECORDED = "*not recorded*"
GEMMA_TERMS_URL = "https://ai.google.dev/gemma/terms"
GEMMA_POLICY_URL = "https://ai.google.dev/gemma/prohibited_use_policy"

# What each source value of an upstream asset means (documentation of the setting, not a result).
DATA_SOURCES = {
    "embedded": "the Turkish sample shipped with the project (written for it, in the schema of "
                f"`{HUB_DATASET_ID}`)",
    "hub": "the Hugging Face Hub",
    "path": "a local file",
}
QUESTION_SOURCES = {
    "embedded": "the TR-MMLU-style sample shipped with the project (written for it; a smoke test, not the benchmark)",
    "tr_mmlu": "TR-MMLU (`alibayram/turkish_mmlu`)",
    "turkishmmlu": "TurkishMMLU (`AYueksel/TurkishMMLU`)",
    "path": "a local question file",
}

Variant = Literal["adapter", "merged"]


class Facts:
    """Recorded facts per asset: {"metadata": {...}, "run_id": str, "timestamp": float, "config": {...}}."""

    def __init__(self, records: Mapping[str, Mapping | None], size: str):
        self.records = records
        self.size = size

    def has(self, asset: str) -> bool:
        return self.records.get(asset) is not None

    def raw(self, asset: str, key: str, default=None):
        record = self.records.get(asset)
        if record is None:
            return default
        value = record.get("metadata", {}).get(key)
        return default if value is None else value

    def get(self, asset: str, key: str, fmt=None) -> str:
        value = self.raw(asset, key)
        if value is None:
            return NOT_RECORDED
        return fmt(value) if fmt else _format(value)

    def config(self, asset: str, key: str, default=None):
        record = self.records.get(asset)
        return (record or {}).get("config", {}).get(key, default)

    def timestamp(self, asset: str) -> float | None:
        record = self.records.get(asset)
        return None if record is None else record.get("timestamp")

    def missing(self, asset: str) -> str:
        return (f"{NOT_RECORDED}: `{asset}` has no materialization for partition `{self.size}` yet "
                f"(materialize it, then this card).")


def _format(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def _accuracy(value) -> str:
    return f"{value:.3f} ({value:.1%})"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return NOT_RECORDED
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _recipe(facts: Facts) -> dict:
    recipe = facts.raw("qlora_adapter", "recipe")
    if isinstance(recipe, str):
        recipe = json.loads(recipe)
    return recipe or {}


def _effective_training(facts: Facts) -> tuple[dict, bool]:
    """The recipe's training section as run: the CPU smoke budget replaces it on the CPU."""
    recipe = _recipe(facts)
    training = dict(recipe.get("training", {}))
    on_cpu = facts.raw("qlora_adapter", "device") == "cpu"
    if on_cpu:
        training.update(recipe.get("cpu", {}))
    return training, on_cpu


def front_matter(facts: Facts, variant: Variant) -> str:
    lines = ["---", "license: gemma", "language:", "- tr", f"library_name: {'peft' if variant == 'adapter' else 'transformers'}",
             "pipeline_tag: text-generation"]
    source = str(facts.raw("base_model", "source", ""))
    if source.startswith("hub:"):
        lines.append(f"base_model: {source.removeprefix('hub:')}")
    if facts.raw("raw_instructions", "source") == "hub":
        lines += ["datasets:", f"- {facts.config('raw_instructions', 'dataset_id', HUB_DATASET_ID)}"]
    lines += ["tags:", "- gemma3", "- qlora", "- lora", "- turkish", "- dagster", "---"]
    return "\n".join(lines)


def build_model_card(records: Mapping[str, Mapping | None], size: str, variant: Variant = "adapter") -> str:
    """The README.md of the adapter (`variant="adapter"`) or of the merged model (`"merged"`)."""
    facts = Facts(records, size)
    sections = [
        front_matter(facts, variant),
        _title(facts, variant),
        _status(facts),
        _files_and_usage(facts, variant),
        _base_model(facts),
        _data(facts),
        _licence(facts),
        _recipe_section(facts),
        _training(facts),
        _evaluation(facts),
        _token_efficiency(facts),
        _merge(facts),
        _intended_use(facts),
        _provenance(facts),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _title(facts: Facts, variant: Variant) -> str:
    what = "LoRA adapter" if variant == "adapter" else "merged model (bf16)"
    size = facts.size.upper()
    return (f"# Gemma 3 {size} for Turkish instructions: QLoRA {what}\n\n"
            f"Gemma 3 {size} fine-tuned on Turkish instruction data with QLoRA by this project's Dagster "
            "pipeline. Every number in this card is read from the metadata the pipeline recorded for the "
            f"run that produced it; a value that was not recorded is shown as {NOT_RECORDED}.")


def _status(facts: Facts) -> str:
    lines = ["## Status"]
    promoted = facts.raw("promoted_adapter", "promoted")
    if promoted is None:
        lines.append(f"- Promotion: {facts.missing('promoted_adapter')}")
    elif promoted:
        lines.append("- Promotion: **promoted**: the adapter passed the TR-MMLU gate (fine-tuned >= base - margin) "
                     "and is the registry entry for this size.")
    else:
        lines.append("- Promotion: **not promoted**: the TR-MMLU gate failed in warning mode; the registry keeps "
                     "the previous entry.")
    adapter_time = facts.timestamp("qlora_adapter")
    for asset, what in (("tr_mmlu_scores", "The TR-MMLU scores"), ("promoted_adapter", "The promotion decision"),
                        ("merged_model", "The merged model")):
        when = facts.timestamp(asset)
        if when is not None and adapter_time is not None and when < adapter_time:
            lines.append(f"- **Stale:** {what} predate the current adapter (trained {_when(adapter_time)}); "
                         f"materialize `{asset}` again.")
    return "\n".join(lines)


def _files_and_usage(facts: Facts, variant: Variant) -> str:
    stop_ids = facts.raw("merged_model", "stop_token_ids")
    stops = (f"`<eos>` and `<end_of_turn>` (ids {', '.join(map(str, stop_ids))})" if stop_ids
             else f"`<eos>` and `<end_of_turn>` (ids {NOT_RECORDED})")
    if variant == "adapter":
        files = ("`adapter_model.safetensors` and `adapter_config.json` (PEFT LoRA), the tokenizer with Gemma 3's "
                 "chat template, and `recipe.json` (the training recipe as run). Load it over the bf16 base model:")
        code = ("from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=\"bfloat16\")\n"
                "model = PeftModel.from_pretrained(base, ADAPTER_DIR)\n"
                "tokenizer = AutoTokenizer.from_pretrained(ADAPTER_DIR)")
    else:
        files = (f"`model.safetensors` (bf16, safetensors only): the adapter merged into a bf16 copy of the base "
                 f"weights, never into the 4-bit training weights. Tokenizer with Gemma 3's chat template; "
                 f"`generation_config.json` stops on {stops}. `merge.json` records the merge check.")
        code = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=\"bfloat16\")\n"
                "tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)")
    code += ("\nmessages = [{\"role\": \"system\", \"content\": \"Kısa cevap ver.\"},\n"
             "            {\"role\": \"user\", \"content\": \"Türkiye'nin en uzun nehri hangisidir?\"}]\n"
             "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", "
             "return_dict=True)\n"
             "output = model.generate(**inputs, max_new_tokens=128, do_sample=False)\n"
             "print(tokenizer.decode(output[0, inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True))")
    notes = ("Gemma 3 has no system role: the chat template puts the system text in front of the first user "
             f"turn, exactly as the training data was rendered. Generation must stop on {stops}.")
    return f"## Files and usage\n\n{files}\n\n```python\n{code}\n```\n\n{notes}"


def _base_model(facts: Facts) -> str:
    if not facts.has("base_model"):
        return f"## Base model\n\n{facts.missing('base_model')}"
    rows = [("source", facts.get("base_model", "source")), ("revision", f"`{facts.get('base_model', 'revision')}`"),
            ("parameters", facts.get("base_model", "parameters")), ("layers", facts.get("base_model", "layers")),
            ("hidden size", facts.get("base_model", "hidden_size")), ("vocabulary", facts.get("base_model", "vocab_size")),
            ("weights dtype", facts.get("base_model", "dtype")), ("weights checksum", f"`{facts.get('base_model', 'checksum')}`")]
    return "## Base model\n\n" + _table(rows, ("", "Gemma 3 " + facts.size))


def _data(facts: Facts) -> str:
    if not facts.has("raw_instructions"):
        return f"## Training data\n\n{facts.missing('raw_instructions')}"
    source = facts.raw("raw_instructions", "source")
    described = DATA_SOURCES.get(source, str(source))
    if source == "hub":
        dataset = facts.config("raw_instructions", "dataset_id", HUB_DATASET_ID)
        described = f"`{dataset}` from {described}"
    elif source == "path":
        described = f"{described} (`{facts.config('raw_instructions', 'path', NOT_RECORDED)}`)"
    rows = [("source", described), ("revision", f"`{facts.get('raw_instructions', 'revision')}`"),
            ("rows loaded", facts.get("raw_instructions", "num_rows")),
            ("rows after cleaning", facts.get("clean_instructions", "num_rows")),
            ("training / held-out rows", f"{facts.get('gemma_chat_dataset', 'train_rows')} / "
                                         f"{facts.get('gemma_chat_dataset', 'eval_rows')}"),
            ("Gemma 3 tokens (rendered chat)", facts.get("gemma_chat_dataset", "total_tokens"))]
    return ("## Training data\n\n" + _table(rows, ("", "")) +
            "\n\nTurkish fields only (`instruction-turkish`, `input-turkish`, `output-turkish`), rendered with Gemma 3's "
            "chat template; the loss covers the model turn only.")


def _licence(facts: Facts) -> str:
    data_note = facts.raw("raw_instructions", "licence")
    data_line = data_note if data_note else (
        f"{NOT_RECORDED} for this run's data; the default data set `{HUB_DATASET_ID}` declares no licence and is "
        "GPT-4 output in the CC BY-NC 4.0 alpaca-gpt4 line: non-commercial.")
    return "\n".join([
        "## Licence",
        "",
        f"- **Model:** Gemma is provided under and subject to the Gemma Terms of Use found at {GEMMA_TERMS_URL}. "
        "This adapter and the merged model are Model Derivatives of Gemma: the terms, including the use "
        f"restrictions of the Gemma Prohibited Use Policy ({GEMMA_POLICY_URL}), apply to them and must be passed "
        "on to anyone you share them with.",
        f"- **Training data:** {data_line}",
        "- **Together:** use the adapter and the merged model for non-commercial purposes only.",
        "- **Benchmark:** TR-MMLU (`alibayram/turkish_mmlu`, CC BY-NC-ND 4.0 on its card) is used for evaluation "
        "only; no question from it is included here.",
    ])


def _recipe_section(facts: Facts) -> str:
    recipe = _recipe(facts)
    if not recipe:
        return f"## Recipe\n\n{facts.missing('qlora_adapter') if not facts.has('qlora_adapter') else NOT_RECORDED}"
    quant, lora = recipe.get("quantization", {}), recipe.get("lora", {})
    training, on_cpu = _effective_training(facts)
    get = lambda section, key: _format(section[key]) if key in section else NOT_RECORDED  # noqa: E731
    quant_text = (f"{get(quant, 'bnb_4bit_quant_type').upper()} 4-bit"
                  f"{', double quantization' if quant.get('bnb_4bit_use_double_quant') else ''}, "
                  f"compute {get(quant, 'bnb_4bit_compute_dtype')}") if quant.get("load_in_4bit") else "none (bf16)"
    rows = [
        ("base weights during training", quant_text),
        ("LoRA", f"r={get(lora, 'r')}, alpha={get(lora, 'lora_alpha')}, dropout={get(lora, 'lora_dropout')} on "
                 f"{', '.join(lora.get('target_modules', [])) or NOT_RECORDED}"),
        ("learning rate", f"{get(training, 'learning_rate')} ({get(training, 'lr_scheduler_type')}, warm-up ratio "
                          f"{get(training, 'warmup_ratio')})"),
        ("batch", f"{get(training, 'per_device_train_batch_size')} x gradient accumulation "
                  f"{get(training, 'gradient_accumulation_steps')}"),
        ("sequence length", f"{get(training, 'max_length')} tokens, packing: {get(training, 'packing')}"),
        ("epochs / max steps", f"{get(training, 'num_train_epochs')} / {get(training, 'max_steps')}"),
        ("optimizer", f"{get(training, 'optim')}, weight decay {get(training, 'weight_decay')}, grad-norm clip "
                      f"{get(training, 'max_grad_norm')}"),
        ("precision", "bf16" if training.get("bf16") else "fp32"),
        ("gradient checkpointing", get(training, "gradient_checkpointing")),
        ("seed", get(training, "seed")),
    ]
    note = ("\n\nTrained on the CPU: the recipe's CPU smoke budget (the values above) replaced the GPU settings, "
            "so this is a pipeline check, not a full fine-tune." if on_cpu else "")
    return "## Recipe (as run)\n\n" + _table(rows, ("", "")) + note


def _training(facts: Facts) -> str:
    if not facts.has("qlora_adapter"):
        return f"## Training\n\n{facts.missing('qlora_adapter')}"
    rows = [("device", facts.get("qlora_adapter", "device")), ("optimizer steps", facts.get("qlora_adapter", "steps")),
            ("final training loss", facts.get("qlora_adapter", "train_loss")),
            ("held-out loss before / after", f"{facts.get('qlora_adapter', 'eval_loss_before')} / "
                                              f"{facts.get('qlora_adapter', 'eval_loss_after')}"),
            ("trainable parameters", facts.get("qlora_adapter", "trainable_parameters")),
            ("tokens per second", facts.get("qlora_adapter", "tokens_per_second")),
            ("peak memory (GiB)", facts.get("qlora_adapter", "peak_memory_gib")),
            ("wall time (s)", facts.get("qlora_adapter", "wall_seconds")),
            ("resumed from", facts.get("qlora_adapter", "resumed_from"))]
    return "## Training\n\n" + _table(rows, ("", ""))


def _evaluation(facts: Facts) -> str:
    if not facts.has("tr_mmlu_scores"):
        return f"## Evaluation: TR-MMLU\n\n{facts.missing('tr_mmlu_scores')}"
    source = facts.raw("tr_mmlu_questions", "source")
    questions = (f"{QUESTION_SOURCES.get(source, source)}, revision `{facts.get('tr_mmlu_questions', 'revision')}`"
                 if source else NOT_RECORDED)
    lines = ["## Evaluation: TR-MMLU", "",
             "| model | accuracy | 95% interval |", "|---|---|---|",
             f"| base | {facts.get('tr_mmlu_scores', 'base_accuracy', _accuracy)} | "
             f"{facts.get('tr_mmlu_scores', 'base_accuracy_ci95')} |",
             f"| fine-tuned | {facts.get('tr_mmlu_scores', 'fine_tuned_accuracy', _accuracy)} | "
             f"{facts.get('tr_mmlu_scores', 'fine_tuned_accuracy_ci95')} |",
             "",
             f"Delta (fine-tuned - base): {facts.get('tr_mmlu_scores', 'delta', lambda v: f'{v:+.3f}')} on "
             f"{facts.get('tr_mmlu_scores', 'questions')} questions from {questions}; "
             f"{facts.get('tr_mmlu_scores', 'num_fewshot')}-shot, lm-evaluation-harness "
             f"{facts.get('tr_mmlu_scores', 'lm_eval_version')} (task hash `{facts.get('tr_mmlu_scores', 'task_hash')}`), "
             "log-likelihood of the option letters, base and fine-tuned scored with identical settings."]
    per_section = facts.raw("tr_mmlu_scores", "per_section")
    if per_section:
        lines += ["", "Per section:", "", str(per_section)]
    return "\n".join(lines)


def _token_efficiency(facts: Facts) -> str:
    if not facts.has("token_efficiency"):
        return f"## Turkish tokenization\n\n{facts.missing('token_efficiency')}"
    metadata = facts.records["token_efficiency"].get("metadata", {})
    fertility = sorted((key.removeprefix("fertility_tr_"), value) for key, value in metadata.items()
                       if key.startswith("fertility_tr_") and isinstance(value, (int, float)))
    rows = [(name, f"{value:.3f}") for name, value in fertility]
    lines = ["## Turkish tokenization", "", f"Headline: {facts.get('token_efficiency', 'verdict_on_claim')}"]
    if rows:
        lines += ["", "Fertility (tokens per Turkish word, lower is better) on the training data:", "",
                  _table(rows, ("tokenizer", "tokens per word"))]
    return "\n".join(lines)


def _merge(facts: Facts) -> str:
    if not facts.has("merged_model"):
        return f"## Merge\n\n{facts.missing('merged_model')}"
    return ("## Merge\n\n" + _table([
        ("merged into", facts.get("merged_model", "merged_into")),
        ("dtype", facts.get("merged_model", "dtype")),
        ("parameters", facts.get("merged_model", "parameters")),
        ("relative logit error vs base + adapter", facts.get("merged_model", "logits_relative_error")),
        ("top-1 agreement vs base + adapter", facts.get("merged_model", "top1_agreement", lambda v: f"{v:.3f}")),
        ("adapter effect on the logits", facts.get("merged_model", "adapter_effect")),
        ("adapter digest", f"`{facts.get('merged_model', 'adapter_digest')}`"),
    ], ("", "")))


def _intended_use(facts: Facts) -> str:
    training, on_cpu = _effective_training(facts)
    rows = facts.get("gemma_chat_dataset", "train_rows")
    steps = facts.get("qlora_adapter", "steps")
    limits = [
        f"Trained on {rows} Turkish examples for {steps} optimizer steps"
        + (" on the CPU smoke budget: expect little change from the base model." if on_cpu else "."),
        f"Gemma 3 {facts.size.upper()} is a small model: it makes factual and arithmetic mistakes and can repeat "
        "itself; check its answers.",
        f"Trained on sequences of up to {_format(training['max_length']) if 'max_length' in training else NOT_RECORDED} "
        "tokens; longer conversations were not seen in training.",
        "No safety tuning beyond what the base model has, and no human preference training.",
    ]
    if facts.raw("raw_instructions", "source") == "hub":
        limits.append("The training answers are GPT-4 output translated to Turkish: they carry its style and its errors.")
    if facts.raw("tr_mmlu_questions", "source") == "embedded":
        limits.append("The TR-MMLU numbers above come from the project's small embedded sample, not the 6,200-question "
                      "benchmark: read them as a pipeline check.")
    return "\n".join([
        "## Intended use and limits", "",
        "Intended: non-commercial research, teaching and prototyping of Turkish assistants; a starting point for "
        "further fine-tuning.", "",
        "Out of scope: commercial use (the data licence), decisions about people, and medical, legal or financial "
        "advice.", "", "Limits:", ""] + [f"- {line}" for line in limits])


def _provenance(facts: Facts) -> str:
    lines = ["## Provenance", "", "| asset | run | materialized |", "|---|---|---|"]
    for asset, record in facts.records.items():
        if record is None:
            lines.append(f"| `{asset}` | {NOT_RECORDED} | {NOT_RECORDED} |")
        else:
            lines.append(f"| `{asset}` | `{str(record.get('run_id', ''))[:8]}` | {_when(record.get('timestamp'))} |")
    return "\n".join(lines)
