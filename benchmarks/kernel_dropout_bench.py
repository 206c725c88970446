"""LoRA dropout in the LoRA kernels against torch's dropout + GEMMs, one projection at a time.

For each projection input shape of a Gemma 3 size (8,192 tokens: 2 x 4096), times on the GPU:
  forward   torch: native_dropout, then dropped @ A^T          kernels: lora_down
  backward  torch: the dropped input rebuilt from the mask, g_down^T @ it, and the LoRA share of
            the input gradient added by row blocks as `fused_lora` does it
                                                                kernels: lora_grad_a + add_lora_grad_x
Both in one process, median of --reps after warm-up, CUDA events. Usage:
  python -m benchmarks.kernel_dropout_bench --size 27b --out results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import date

from benchmarks.gemma3_shapes import text_config


def _time(fn, reps: int) -> float:
    import torch

    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def bench_shape(tokens: int, width: int, rank: int, p: float, reps: int) -> dict:
    import torch

    from tr_gemma.training import fused_lora, kernel_dropout

    x = torch.randn(tokens, width, device="cuda", dtype=torch.bfloat16)
    a = torch.randn(rank, width, device="cuda", dtype=torch.bfloat16) * 0.02
    g_down = torch.randn(tokens, rank, device="cuda", dtype=torch.bfloat16)
    grad_x = torch.randn(tokens, width, device="cuda", dtype=torch.bfloat16)
    _, mask = torch.native_dropout(x, p, True)
    drawn = kernel_dropout.draw(x, p)

    def torch_forward():
        dropped, _ = torch.native_dropout(x, p, True)
        return dropped @ a.t()

    def torch_backward():
        grad_a = g_down.t() @ fused_lora._redropped(x, mask, p)
        scale = 1.0 / (1.0 - p)
        for start in range(0, tokens, fused_lora.ROWS_PER_BLOCK):
            rows = slice(start, start + fused_lora.ROWS_PER_BLOCK)
            grad_x[rows].add_((g_down[rows] @ a).mul_(mask[rows]), alpha=scale)
        return grad_a

    def kernel_backward():
        grad_a = kernel_dropout.lora_grad_a(x, g_down, drawn)
        kernel_dropout.add_lora_grad_x(grad_x, g_down, a, drawn)
        return grad_a

    result = {"tokens": tokens, "width": width,
              "torch_forward_ms": _time(torch_forward, reps),
              "kernel_forward_ms": _time(lambda: kernel_dropout.lora_down(x, a, drawn), reps),
              "torch_backward_ms": _time(torch_backward, reps),
              "kernel_backward_ms": _time(kernel_backward, reps),
              "kernel_grad_a_ms": _time(lambda: kernel_dropout.lora_grad_a(x, g_down, drawn), reps),
              "kernel_grad_x_ms": _time(lambda: kernel_dropout.add_lora_grad_x(grad_x, g_down, a, drawn), reps)}
    result["forward_ratio"] = result["torch_forward_ms"] / result["kernel_forward_ms"]
    result["backward_ratio"] = result["torch_backward_ms"] / result["kernel_backward_ms"]
    return result


SWEEP = {  # candidate tiles per kernel (kernel_dropout.TILES)
    "down": [dict(BM=bm, BK=bk, num_warps=w, num_stages=st) for bm, bk, w, st in
             [(32, 128, 4, 3), (16, 128, 4, 3), (16, 256, 4, 3), (32, 256, 8, 3), (64, 128, 4, 3), (64, 64, 4, 4),
              (32, 64, 4, 4), (16, 64, 2, 4)]],
    "grad_a": [dict(BM=bm, BN=bn, num_warps=w, num_stages=st) for bm, bn, w, st in
               [(64, 64, 4, 3), (128, 64, 4, 3), (64, 128, 4, 3), (128, 128, 8, 3), (32, 64, 4, 3), (32, 128, 4, 4)]],
    "grad_x": [dict(BM=bm, BN=bn, num_warps=w) for bm, bn, w in
               [(64, 128, 4), (128, 128, 8), (64, 256, 8), (32, 128, 4), (128, 64, 4), (32, 256, 4), (16, 256, 4)]],
}


def sweep(tokens: int, widths: list[int], p: float, reps: int) -> dict:
    """Each kernel's candidate tiles, timed on each width: {kernel: [{tiles, ms per width, total}]}."""
    import torch

    from tr_gemma.training import kernel_dropout

    calls = {}
    for width in widths:
        x = torch.randn(tokens, width, device="cuda", dtype=torch.bfloat16)
        a = torch.randn(32, width, device="cuda", dtype=torch.bfloat16) * 0.02
        g_down = torch.randn(tokens, 32, device="cuda", dtype=torch.bfloat16)
        grad_x = torch.randn(tokens, width, device="cuda", dtype=torch.bfloat16)
        drawn = kernel_dropout.draw(x, p)
        calls[width] = {"down": lambda x=x, a=a, d=drawn: kernel_dropout.lora_down(x, a, d),
                        "grad_a": lambda x=x, g=g_down, d=drawn: kernel_dropout.lora_grad_a(x, g, d),
                        "grad_x": lambda gx=grad_x, g=g_down, a=a, d=drawn: kernel_dropout.add_lora_grad_x(gx, g, a, d)}
    chosen = dict(kernel_dropout.TILES)
    results = {}
    for kernel, candidates in SWEEP.items():
        rows = []
        for tiles in candidates:
            kernel_dropout.TILES[kernel] = tiles
            try:
                ms = {w: _time(calls[w][kernel], reps) for w in widths}
            except Exception as error:  # a tile the compiler refuses (shared memory, dot shape)
                rows.append({"tiles": tiles, "error": str(error)[:200]})
                continue
            rows.append({"tiles": tiles, "ms": ms, "total": sum(ms.values())})
            print(kernel, tiles, {w: round(v, 3) for w, v in ms.items()})
        kernel_dropout.TILES[kernel] = chosen[kernel]
        results[kernel] = rows
    return results


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="27b")
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--dropout", type=float, default=0.05)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sweep", action="store_true", help="time each kernel's candidate tiles instead")
    args = parser.parse_args()
    config = text_config(args.size)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    q_out = config["num_attention_heads"] * config["head_dim"]
    # projection inputs: q/k/v, gate/up (hidden), o (q_out), down (intermediate); per layer 5, 1, 1
    widths = {"hidden (q, k, v, gate, up)": (hidden, 5), "attention out (o)": (q_out, 1),
              "intermediate (down)": (inter, 1)}
    if args.sweep:
        results = sweep(args.tokens, [w for w, _ in widths.values()], args.dropout, args.reps)
        with open(args.out, "w") as f:
            json.dump({"benchmark": "kernel_dropout_sweep", "date": date.today().isoformat(), "size": args.size,
                       "device": torch.cuda.get_device_name(), "tokens": args.tokens, "sweep": results}, f, indent=1)
        return
    rows = {}
    for name, (width, per_layer) in widths.items():
        rows[name] = {**bench_shape(args.tokens, width, 32, args.dropout, args.reps), "per_layer": per_layer}
    layer = {k: sum(r[k] * r["per_layer"] for r in rows.values())
             for k in ("torch_forward_ms", "kernel_forward_ms", "torch_backward_ms", "kernel_backward_ms")}
    # a checkpointed layer runs each forward twice (forward and recompute), each backward once
    layer["torch_layer_ms"] = 2 * layer["torch_forward_ms"] + layer["torch_backward_ms"]
    layer["kernel_layer_ms"] = 2 * layer["kernel_forward_ms"] + layer["kernel_backward_ms"]
    out = {"benchmark": "kernel_dropout", "date": date.today().isoformat(), "size": args.size,
           "device": torch.cuda.get_device_name(), "tokens": args.tokens, "dropout": args.dropout,
           "shapes": rows, "per_layer": layer}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    for name, r in rows.items():
        print(f"{name} {r['width']}: forward {r['torch_forward_ms']:.3f} -> {r['kernel_forward_ms']:.3f} ms, "
              f"backward {r['torch_backward_ms']:.3f} -> {r['kernel_backward_ms']:.3f} ms "
              f"(grad A {r['kernel_grad_a_ms']:.3f}, grad x {r['kernel_grad_x_ms']:.3f})")
    print(f"per layer: {layer['torch_layer_ms']:.2f} -> {layer['kernel_layer_ms']:.2f} ms")


if __name__ == "__main__":
    main()
