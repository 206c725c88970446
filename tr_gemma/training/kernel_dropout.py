"""LoRA dropout drawn inside the LoRA kernels (the `dropout_in_lora_kernels` recipe lever).

The fused LoRA path draws a projection's dropout with torch's `native_dropout`: it writes the
dropped input (2 bytes an element) and a mask (1 byte), the LoRA GEMM reads the dropped copy back,
the checkpointed recompute does it all again, and backward rebuilds the dropped input and masks the
LoRA input gradient in three more passes. At 27B that is about 37 bytes of traffic per element of
every projection's input, some 16 GB per decoder layer and micro-batch of 8,192 tokens.

Here three Triton kernels draw the mask where they use it, in registers, and never store it:
  - `lora_down`: dropout(x) @ A^T, reading x once;
  - `lora_grad_a`: dropout(x)^T-weighted gradient of A, reading x once;
  - `add_lora_grad_x`: the input gradient += (g_down @ A) * mask * scale, in place.
They reproduce torch's CUDA dropout mask bit for bit: the same Philox4x32-10 counter stream
(`curand_init(seed, thread, offset)`), the same thread layout (256-thread blocks, as many blocks
as the GPU keeps resident, 8 bf16 elements a thread a loop, two 4-word draws a loop), the same
uniform conversion and comparison, and the generator's offset advanced by what torch would
advance it. So masks, the recompute's masks, and every later draw equal the PEFT baseline's.
With `kernel_dropout_bitmask` the recompute's LoRA-down kernel also stores the mask at one bit per
element, and backward's two kernels read it instead of drawing it again: two of the four draws of
each mask gone, for tokens x width / 8 bytes kept through the layer's backward.
Where torch would take another kernel variant (an unaligned or odd-sized input, CUDA graph capture),
the caller keeps torch's dropout.
"""

from __future__ import annotations

import functools

BLOCK_THREADS = 256  # torch's dropout launch: threads a block
VEC = 8  # bf16 elements a thread handles a loop (16-byte vector loads)
# tile shapes and launch settings per kernel: the fastest of `benchmarks/kernel_dropout_bench.py
# --sweep` over a 27B layer's projections on an H100 (benchmarks/results/kernel_dropout_sweep_27b.json)
TILES = {"down": dict(BM=32, BK=128, num_warps=4, num_stages=3),
         "grad_a": dict(BM=64, BN=64, num_warps=4, num_stages=3),
         "grad_x": dict(BM=32, BN=128, num_warps=4)}


class KernelMask:
    """Where a projection's dropout mask lives in torch's Philox stream: enough to draw it again."""

    __slots__ = ("seed", "offset", "threads", "keep", "scale", "bits")

    def __init__(self, seed: int, offset: int, threads: int, keep: float, scale: float):
        self.seed, self.offset, self.threads, self.keep, self.scale = seed, offset, threads, keep, scale
        self.bits = None  # the mask stored at one bit per element by `lora_down`, where asked

    def args(self) -> dict:
        """The kernels' arguments for it: seed and counter as uint32 halves, keep, scale, and
        `sweep`, the elements one loop of torch's dropout threads covers."""
        quads = self.offset // 4  # curand's skipahead(offset): the counter moves by offset / 4
        return dict(seed_lo=self.seed & 0xFFFFFFFF, seed_hi=self.seed >> 32, ctr_lo=quads & 0xFFFFFFFF,
                    ctr_hi=quads >> 32, keep=self.keep, scale=self.scale, sweep=self.threads * VEC)


@functools.cache
def _resident_threads(device_index: int) -> int:
    """How many threads torch's dropout launches at most on this GPU (blocks resident on every SM)."""
    import torch

    props = torch.cuda.get_device_properties(device_index)
    per_sm = getattr(props, "max_threads_per_multi_processor", 2048)
    return props.multi_processor_count * (per_sm // BLOCK_THREADS) * BLOCK_THREADS


def torch_layout(numel: int, device_index: int) -> tuple[int, int]:
    """(threads, Philox offset increment) of torch's dropout kernel for `numel` elements."""
    blocks = min(_resident_threads(device_index) // BLOCK_THREADS, -(-numel // BLOCK_THREADS))
    threads = blocks * BLOCK_THREADS
    increment = ((numel - 1) // (threads * 4) + 1) * 4
    return threads, increment


def usable(x2) -> bool:
    """Whether torch would draw this input's mask with its 8-wide vector kernel, the one these
    kernels reproduce (contiguous bf16, 16-byte aligned, a multiple of 8 elements, rows of whole
    4-element draws), outside CUDA graph capture (the generator offset is read on the host)."""
    import torch

    return (x2.is_cuda and x2.dtype == torch.bfloat16 and x2.is_contiguous() and x2.data_ptr() % 16 == 0
            and x2.numel() % VEC == 0 and x2.shape[-1] % 4 == 0 and x2.numel() < 2 ** 31
            and not torch.cuda.is_current_stream_capturing() and _triton() is not None)


def draw(x2, dropout_p: float) -> KernelMask:
    """Take the Philox offsets torch's dropout of `x2` would take from the default CUDA generator
    (advancing it the same way) and return where the mask lives."""
    import numpy as np
    import torch

    index = x2.device.index if x2.device.index is not None else torch.cuda.current_device()
    generator = torch.cuda.default_generators[index]
    threads, increment = torch_layout(x2.numel(), index)
    offset = generator.get_offset()
    generator.set_offset(offset + increment)
    keep = float(np.float32(1.0 - dropout_p))  # torch compares in float: rand < float(1 - p)
    scale = float(np.float32(1.0 / keep))  # and scales by float(1.0 / that float)
    return KernelMask(generator.initial_seed(), offset, threads, keep, scale)


@functools.cache
def _triton():
    """The kernels, compiled on first use (None where Triton is missing)."""
    try:
        import triton

        from tr_gemma.training import kernel_dropout_triton as kernels
    except ImportError:
        return None
    return dict(down=kernels.lora_down_kernel, grad_a=kernels.lora_grad_a_kernel,
                grad_x=kernels.add_lora_grad_x_kernel, mask=kernels.mask_kernel, cdiv=triton.cdiv)


def _rank_ok(a) -> int:
    rank = a.shape[0]
    if rank < 16 or rank & (rank - 1):
        raise ValueError(f"dropout_in_lora_kernels needs a power-of-two LoRA rank of at least 16, got r={rank}")
    return rank


def bits_for(x2):
    """An empty one-bit-per-element mask for x2, (tokens, width // 8) bytes; None where the width
    is not a multiple of 8 (backward's kernels then draw the mask again)."""
    import torch

    M, K = x2.shape
    return torch.empty(M, K // 8, dtype=torch.uint8, device=x2.device) if K % 8 == 0 else None


def lora_down(x2, a, mask: KernelMask, bits=None):
    """bf16(dropout(x2)) @ a^T, the mask drawn in the kernel: (tokens, r). With `bits` (`bits_for`)
    the kernel also stores the mask there, so backward's kernels read it instead of drawing it."""
    import torch

    k = _triton()
    M, K = x2.shape
    R = _rank_ok(a)
    out = torch.empty(M, R, dtype=x2.dtype, device=x2.device)
    tiles = TILES["down"]
    k["down"][(k["cdiv"](M, tiles["BM"]),)](x2, a.contiguous(), out, out if bits is None else bits, M, K,
                                            **mask.args(), R=R, WRITE_BITS=bits is not None, **tiles)
    return out


def lora_grad_a(x2, g_down, mask: KernelMask, bits=None):
    """g_down^T @ bf16(dropout(x2)), fp32 sums rounded once to bf16 as a GEMM's output: (r, in).
    The mask is read from `bits` where given, else drawn."""
    import torch

    k = _triton()
    M, K = x2.shape
    R = _rank_ok(g_down.t())
    tiles = TILES["grad_a"]
    BM, BN = tiles["BM"], tiles["BN"]
    splits = max(1, min(8, (4 * _sm_count(x2)) // k["cdiv"](K, BN)))
    rows_per_split = k["cdiv"](k["cdiv"](M, splits), BM) * BM
    splits = k["cdiv"](M, rows_per_split)
    partial = torch.empty(splits, R, K, dtype=torch.float32, device=x2.device)
    k["grad_a"][(k["cdiv"](K, BN), splits)](x2, g_down.contiguous(), partial, x2 if bits is None else bits, M, K,
                                             rows_per_split, **mask.args(), R=R, FROM_BITS=bits is not None,
                                             **tiles)
    return partial.sum(0).to(x2.dtype)


def _sm_count(x2) -> int:
    """Streaming multiprocessors of x2's GPU (132 elsewhere, e.g. under Triton's interpreter)."""
    import torch

    if not x2.is_cuda:
        return 132
    index = x2.device.index if x2.device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_properties(index).multi_processor_count


def add_lora_grad_x(grad_x, g_down, a, mask: KernelMask, bits=None) -> None:
    """grad_x += mask * scale * (g_down @ a), in place, the mask read from `bits` where given, else drawn."""
    k = _triton()
    M, K = grad_x.shape
    R = _rank_ok(a)
    tiles = TILES["grad_x"]
    k["grad_x"][(k["cdiv"](M, tiles["BM"]), k["cdiv"](K, tiles["BN"]))](
        grad_x, g_down.contiguous(), a.contiguous(), grad_x if bits is None else bits, M, K, **mask.args(), R=R,
        FROM_BITS=bits is not None, **tiles)


def mask_bytes(shape, mask: KernelMask, device, read_bits=None, write_bits=None):
    """The keep mask of a (tokens, width) input as a bool tensor (tests): drawn, or read from
    `read_bits`; the drawn mask also stored into `write_bits` as the LoRA kernel stores it."""
    import torch

    k = _triton()
    M, K = shape
    out = torch.empty(M, K, dtype=torch.int8, device=device)
    bits = read_bits if read_bits is not None else write_bits
    BM, BN = 32, 128
    k["mask"][(k["cdiv"](M, BM), k["cdiv"](K, BN))](out, out if bits is None else bits, M, K, **mask.args(),
                                                     FROM_BITS=read_bits is not None,
                                                     WRITE_BITS=write_bits is not None, BM=BM, BN=BN)
    return out.bool()
