"""How long one decoder layer of a Gemma 3 shape takes per training pass, split into host and GPU.

The 1B step is host-bound (docs/benchmarks.md: the GPU is busy less than half of it). This
measures, for each code path of the layer (PEFT, the fused NF4 + LoRA function, the fused
norms, the fused q/k norm + rotary embedding), the time of one forward + checkpointed backward
per decoder layer: models of 2 and 4 layers are timed and differenced, so the embedding, LM head
and loss cancel out. At a few tokens the GPU work is negligible and the number is the host's cost
of issuing the layer; at 8,192 tokens (one row of 4 packed documents, the recipe's tokens per
micro-step) it is what a layer really takes. Same process, same random weights.

    python -m benchmarks.layer_host_time --size 1b --out benchmarks/results/layer_host_time_1b.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.gemma3_shapes import text_config

VARIANTS = {
    "peft": {},
    "fused_lora_public_dequant": {"fused_lora": True, "public_dequant": True},
    "fused_lora": {"fused_lora": True},
    "fused_lora+fused_norms": {"fused_lora": True, "fused_norms": True},
    "fused_lora+fused_norms+fused_rope": {"fused_lora": True, "fused_norms": True, "fused_rope": True},
    "fused_lora+fused_norms+fused_rope+compiled_layers": {"fused_lora": True, "fused_norms": True, "fused_rope": True,
                                                          "compiled_layers": True},
}


def build(folder: Path, size: str, layers: int, levers: dict, attn: str, dropout: float):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, Gemma3ForCausalLM, Gemma3TextConfig

    from tr_gemma.training import fused_lora, varlen_attention
    from tr_gemma.training.compiled_layers import compile_decoder_layers
    from tr_gemma.training.fused_elementwise import fuse_norms_and_activations
    from tr_gemma.training.fused_lora import fuse_lora
    from tr_gemma.training.fused_rope import fuse_qk_norm_rope

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        with torch.device("cuda"):
            Gemma3ForCausalLM(Gemma3TextConfig(**text_config(size, layers))).to(torch.bfloat16).save_pretrained(folder)
    if attn == varlen_attention.NAME:
        varlen_attention.register()
    model = Gemma3ForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16, attn_implementation=attn, device_map={"": 0},
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True,
                                               bnb_4bit_compute_dtype=torch.bfloat16))
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, lora_dropout=dropout, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"]))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.train()
    if levers.get("fused_norms"):
        fuse_norms_and_activations(model)
    if levers.get("fused_rope"):
        fuse_qk_norm_rope(model)
    if levers.get("fused_lora"):
        fuse_lora(model)
    if levers.get("compiled_layers"):
        if attn == varlen_attention.NAME:
            varlen_attention.attach(model)
        compile_decoder_layers(model)
    # bitsandbytes' public dequantisation (two op dispatches) instead of its kernels called directly
    fused_lora._CUDA_DEQUANTIZERS = None if levers.get("public_dequant") else ()
    return model


def seconds_per_call(call, calls: int, warmup: int) -> float:
    """Wall seconds per call after `warmup` calls, the GPU synchronised before and after."""
    import torch

    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def dequantize_call_seconds(model, calls: int = 500) -> dict:
    """Host seconds per dequantisation of the first q_proj weight: public API against direct."""
    import torch
    from bitsandbytes import functional as bnbf

    from tr_gemma.training import fused_lora

    layer = next(m for n, m in model.named_modules() if n.endswith("q_proj") and hasattr(m, "base_layer"))
    weight = layer.base_layer.weight
    paths = {"public": lambda: bnbf.dequantize_4bit(weight.view(-1, 1), weight.quant_state).to(torch.bfloat16),
             "direct": lambda: fused_lora._dequantize(weight, weight.quant_state, torch.bfloat16)}
    fused_lora._CUDA_DEQUANTIZERS = ()
    assert torch.equal(paths["public"](), paths["direct"]())
    return {name: seconds_per_call(path, calls, warmup=20) for name, path in paths.items()}


def time_passes(model, tokens: int, vocab: int, repeats: int) -> float:
    """Seconds per forward + backward of one packed row of `tokens` (4 documents), synchronised."""
    import torch

    ids = torch.randint(3, vocab, (1, tokens), device="cuda")
    quarter = tokens // 4
    position_ids = torch.cat([torch.arange(quarter, device="cuda")] * 3
                             + [torch.arange(tokens - 3 * quarter, device="cuda")])[None]

    def one_pass():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids, position_ids=position_ids).loss
        loss.backward()

    seconds = seconds_per_call(one_pass, repeats, warmup=3)
    model.zero_grad(set_to_none=True)
    return seconds


def main() -> None:
    import tempfile

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1b")
    parser.add_argument("--tokens", default="64,8192")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--attn", default="packed_varlen")
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    token_counts = [int(t) for t in args.tokens.split(",")]
    vocab = text_config(args.size, 2)["vocab_size"]
    results = {"size": args.size, "attn": args.attn, "lora_dropout": args.dropout,
               "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "variants": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for variant in args.variants.split(","):
            per_depth = {}
            for layers in (2, 4):
                model = build(Path(scratch) / f"l{layers}", args.size, layers, VARIANTS[variant], args.attn,
                              args.dropout)
                per_depth[layers] = {t: time_passes(model, t, vocab, args.repeats) for t in token_counts}
                if "dequantize_us" not in results:
                    results["dequantize_us"] = {k: 1e6 * v for k, v in dequantize_call_seconds(model).items()}
                    print("dequantize", results["dequantize_us"], flush=True)
                del model
                torch.cuda.empty_cache()
            results["variants"][variant] = {
                str(t): {"ms_per_layer": 1000 * (per_depth[4][t] - per_depth[2][t]) / 2,
                         "ms_2_layers": 1000 * per_depth[2][t], "ms_4_layers": 1000 * per_depth[4][t]}
                for t in token_counts}
            print(variant, json.dumps(results["variants"][variant]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
