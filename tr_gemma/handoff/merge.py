"""Merging a LoRA adapter into a bf16 copy of the Gemma 3 base weights.

The adapter was trained over NF4 4-bit weights, but it is merged into the bf16 checkpoint the
4-bit weights were quantised from: merging into dequantised 4-bit weights would bake the
quantisation error into the shipped model. The merged folder holds safetensors only, the
tokenizer with Gemma 3's chat template, and a generation config that stops on `<end_of_turn>`
(the end of a model turn) as well as `<eos>`.

Before saving, the merged model's logits on a fixed Turkish chat prompt are compared with the
logits of base + adapter (unmerged, PEFT): they must agree within bf16 rounding.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tr_gemma.atomic_io import atomic_directory
from tr_gemma.chat_format import END_OF_TURN, render, user_turn

# Tokens that end a generated answer: Gemma 3 closes every model turn with <end_of_turn>; <eos>
# ends a document. The ids are looked up in the tokenizer, never assumed.
STOP_TOKENS = ("<eos>", END_OF_TURN)

# The probe for the merge check: a chat prompt plus the start of an answer, so that the
# compared positions include model-turn text (where the adapter acts most).
PROBE_MESSAGES = [
    {"role": "user", "content": user_turn("Kısa ve net cevap ver.", "Türkiye'nin başkenti neresidir?", "")},
    {"role": "assistant", "content": "Türkiye'nin başkenti Ankara'dır."},
]

DEFAULT_TOLERANCE = 0.03  # relative L2 error of the logits; bf16 rounding measures ~0.01 on 270M


@dataclass
class MergeReport:
    output_dir: str
    parameters: int
    dtype: str
    stop_token_ids: list[int]
    stop_tokens: list[str]
    pad_token_id: int
    files: list[str]
    size_bytes: int
    adapter_digest: str
    probe_tokens: int
    logits_relative_error: float  # |merged - (base + adapter)| / |base + adapter|, over the probe
    logits_max_abs_diff: float
    top1_agreement: float  # share of probe positions where merged and base + adapter agree on the argmax
    adapter_effect: float  # |(base + adapter) - base| / |base + adapter|: how much the adapter changes
    tolerance: float
    passed: bool
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def stop_token_ids(tokenizer) -> list[int]:
    """The ids of `<eos>` and `<end_of_turn>` in this tokenizer (fails if either is unknown)."""
    ids = []
    for token in STOP_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise ValueError(f"the tokenizer has no {token} token: is this a Gemma 3 tokenizer?")
        ids.append(int(token_id))
    return ids


def configure_generation(model, tokenizer) -> list[int]:
    """Make the model's generation config stop on <eos> and <end_of_turn>, pad with <pad>."""
    ids = stop_token_ids(tokenizer)
    config = model.generation_config
    config.eos_token_id = ids
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    # A config derived from the model config can be rebuilt from it by generate(), losing the
    # <end_of_turn> stop id; this one is explicit.
    config._from_model_config = False
    return ids


def load_tokenizer_with_template(model_dir: Path):
    """The base checkpoint's tokenizer with Gemma 3's chat template (pt checkpoints ship none)."""
    from transformers import AutoTokenizer

    from tr_gemma.chat_format import gemma3_chat_template

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = gemma3_chat_template()
    return tokenizer


def folder_digest(folder: Path, pattern: str = "*.safetensors") -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob(pattern)):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def compare_logits(merged, reference, base) -> dict:
    """Agreement of merged vs base + adapter logits, and the adapter's own effect for scale."""
    merged, reference, base = merged.float(), reference.float(), base.float()
    norm = reference.norm().clamp_min(1e-12)
    return {
        "logits_relative_error": float((merged - reference).norm() / norm),
        "logits_max_abs_diff": float((merged - reference).abs().max()),
        "top1_agreement": float((merged.argmax(-1) == reference.argmax(-1)).float().mean()),
        "adapter_effect": float((reference - base).norm() / norm),
    }


def merge_adapter(
    model_dir: Path,
    adapter_dir: Path,
    output_dir: Path,
    log: Callable[[str], None] = print,
    tolerance: float = DEFAULT_TOLERANCE,
) -> MergeReport:
    """Merge `adapter_dir` into the bf16 base at `model_dir`; write the result to `output_dir`.

    Runs on the CPU: a bf16 copy of any Gemma 3 size fits in host memory, and the merge itself is
    one matrix product per adapted layer.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    started = time.perf_counter()
    model_dir, adapter_dir, output_dir = Path(model_dir), Path(adapter_dir), Path(output_dir)
    tokenizer = load_tokenizer_with_template(model_dir)
    # bf16, never quantization_config: the merge goes into full-precision base weights.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    if getattr(model.config, "quantization_config", None) is not None:
        raise ValueError(f"{model_dir} is a quantized checkpoint; the adapter must be merged into bf16 weights")
    probe = tokenizer(render(PROBE_MESSAGES), return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        base_logits = model(probe).logits
        peft_model = PeftModel.from_pretrained(model, adapter_dir)
        reference = peft_model(probe).logits
        log(f"Merging the adapter from {adapter_dir} into the bf16 weights of {model_dir}.")
        merged = peft_model.merge_and_unload(safe_merge=True)
        merged_logits = merged(probe).logits
    agreement = compare_logits(merged_logits, reference, base_logits)
    passed = agreement["logits_relative_error"] <= tolerance
    log(f"Merge check: relative logit error {agreement['logits_relative_error']:.4f} (tolerance {tolerance}), "
        f"top-1 agreement {agreement['top1_agreement']:.3f}, adapter effect {agreement['adapter_effect']:.4f}.")

    merged = merged.to(torch.bfloat16)
    stop_ids = configure_generation(merged, tokenizer)
    with atomic_directory(output_dir, replace=True) as staging:
        merged.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        pickled = sorted(p.name for p in staging.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
        if pickled:
            raise RuntimeError(f"refusing to ship pickled weights: {pickled}")
        if not (staging / "chat_template.jinja").is_file() and "chat_template" not in json.loads(
                (staging / "tokenizer_config.json").read_text()):
            raise RuntimeError("the saved tokenizer carries no chat template")
        manifest = {"base_model_dir": str(model_dir), "adapter_dir": str(adapter_dir),
                    "adapter_digest": folder_digest(adapter_dir), "dtype": "bfloat16",
                    "stop_token_ids": stop_ids, **agreement, "tolerance": tolerance}
        (staging / "merge.json").write_text(json.dumps(manifest, indent=2))
    files = sorted(p.name for p in output_dir.iterdir())
    return MergeReport(
        output_dir=str(output_dir),
        parameters=sum(p.numel() for p in merged.parameters()),
        dtype=str(next(merged.parameters()).dtype).removeprefix("torch."),
        stop_token_ids=stop_ids,
        stop_tokens=list(STOP_TOKENS),
        pad_token_id=int(tokenizer.pad_token_id),
        files=files,
        size_bytes=sum(p.stat().st_size for p in output_dir.iterdir() if p.is_file()),
        adapter_digest=manifest["adapter_digest"],
        probe_tokens=int(probe.shape[1]),
        tolerance=tolerance,
        passed=passed,
        seconds=time.perf_counter() - started,
        **agreement,
    )
