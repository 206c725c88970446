"""The Triton kernels of `kernel_dropout` (imported only where Triton is: a CUDA torch).

Every kernel takes the mask's place in torch's Philox stream as (seed_lo, seed_hi, ctr_lo, ctr_hi,
keep, scale, sweep); `sweep` (elements one loop of torch's dropout threads covers) is a compile-time
constant so the per-draw divisions become multiplications. Inputs hold fewer than 2**31 elements
(`kernel_dropout.usable`), so element indices are int32."""

import triton
import triton.language as tl

# the generator's seed and offset, and the token count, vary call to call: compiled once, not per value
_VARYING = ["M", "seed_lo", "seed_hi", "ctr_lo", "ctr_hi"]


@triton.jit
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint32 counters and key, as curand's curand_Philox4x32_10."""
    for _ in tl.static_range(10):
        hi0 = tl.umulhi(c0, 0xD2511F53)
        lo0 = c0 * 0xD2511F53
        hi1 = tl.umulhi(c2, 0xCD9E8D57)
        lo1 = c2 * 0xCD9E8D57
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return c0, c1, c2, c3


@triton.jit
def _keep(r, keep):
    """curand's uniform, x * 2^-32 + 2^-33 in float, below float(1 - p): kept (as 0/1 bytes)."""
    return ((r.to(tl.float32) * 2.3283064365386963e-10 + 1.1641532182693481e-10) < keep).to(tl.int8)


@triton.jit
def _keep_mask(rows, col0, width, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep: tl.constexpr,
               BM: tl.constexpr, BN: tl.constexpr):
    """[BM, BN] booleans: torch's dropout keep decision for elements (rows, col0 + 0..BN-1) of a
    row-major (?, width) input. `col0` is a multiple of 4; one Philox draw gives 4 elements.

    Element e belongs to thread (e % sweep) // 8 of torch's kernel, in its loop e // sweep, whose
    two draws give elements 0-3 and 4-7 of the thread's 8: draw number 2 * loop + (e % 8) // 4,
    on the counter (offset / 4 + draw number, thread). (Each draw's four words as strided column
    sets, with no interleaving, measured 3x slower: strided loads and stores.)"""
    first = rows[:, None] * width + (col0 + tl.arange(0, BN // 4) * 4)[None, :]  # each draw's first element
    in_loop = first % sweep
    thread = (in_loop // 8).to(tl.uint32)
    draw = ((first // sweep) * 2 + (in_loop % 8) // 4).to(tl.uint32)
    lo = ctr_lo.to(tl.uint32) + draw
    hi = ctr_hi.to(tl.uint32) + (lo < draw).to(tl.uint32)  # carry into the counter's upper word
    zero = tl.zeros_like(thread)
    r0, r1, r2, r3 = _philox(lo, hi, thread, zero, seed_lo.to(tl.uint32) + zero, seed_hi.to(tl.uint32) + zero)
    # words x, y, z, w are elements +0..+3: interleave into [BM, BN]
    both = tl.join(tl.join(_keep(r0, keep), _keep(r2, keep)), tl.join(_keep(r1, keep), _keep(r3, keep)))
    return tl.reshape(both, (BM, BN)) != 0


@triton.jit
def _store_bits(bits_ptr, kept, rows, col0, M, K, BM: tl.constexpr, BN: tl.constexpr):
    """Store a [BM, BN] mask at one bit per element: byte (row, c // 8), bit c % 8, of a (M, K // 8) tensor."""
    shifts = tl.arange(0, 8).to(tl.uint8)
    grouped = tl.reshape(kept.to(tl.uint8), (BM, BN // 8, 8)) << shifts[None, None, :]
    packed = tl.sum(grouped.to(tl.int32), axis=2).to(tl.uint8)
    byte = col0 // 8 + tl.arange(0, BN // 8)
    where = (rows[:, None] < M) & (byte[None, :] < K // 8)
    tl.store(bits_ptr + rows[:, None] * (K // 8) + byte[None, :], packed, mask=where)


@triton.jit
def _load_bits(bits_ptr, rows, col0, M, K, BM: tl.constexpr, BN: tl.constexpr):
    """The [BM, BN] mask `_store_bits` stored (False outside the tensor)."""
    byte = col0 // 8 + tl.arange(0, BN // 8)
    where = (rows[:, None] < M) & (byte[None, :] < K // 8)
    packed = tl.load(bits_ptr + rows[:, None] * (K // 8) + byte[None, :], mask=where, other=0)
    shifts = tl.arange(0, 8).to(tl.uint8)
    bits = (packed[:, :, None] >> shifts[None, None, :]) & 1
    return tl.reshape(bits, (BM, BN)) != 0


@triton.jit
def _mask(rows, col0, M, K, bits_ptr, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep: tl.constexpr,
          FROM_BITS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """The keep mask of a tile: read from the bits an earlier kernel stored, or drawn."""
    if FROM_BITS:
        kept = _load_bits(bits_ptr, rows, col0, M, K, BM, BN)
    else:
        kept = _keep_mask(rows, col0, K, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep, BM, BN)
    return kept


@triton.jit(do_not_specialize=_VARYING)
def lora_down_kernel(x_ptr, a_ptr, out_ptr, bits_ptr, M, K, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, scale,
                     sweep: tl.constexpr, R: tl.constexpr, WRITE_BITS: tl.constexpr, BM: tl.constexpr,
                     BK: tl.constexpr):
    """out[M, R] = bf16(dropout(x)[M, K]) @ A[R, K]^T, fp32 accumulation; with WRITE_BITS the mask
    also goes to bits[M, K // 8], one bit an element, for backward's kernels."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    rank = tl.arange(0, R)
    acc = tl.zeros((BM, R), dtype=tl.float32)
    for k0 in range(0, K, BK):
        cols = k0 + tl.arange(0, BK)
        inside = (rows[:, None] < M) & (cols[None, :] < K)
        x = tl.load(x_ptr + rows[:, None] * K + cols[None, :], mask=inside, other=0.0)
        kept = _keep_mask(rows, k0, K, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep, BM, BK)
        if WRITE_BITS:
            _store_bits(bits_ptr, kept, rows, k0, M, K, BM, BK)
        dropped = tl.where(kept, x.to(tl.float32) * scale, 0.0).to(tl.bfloat16)
        a = tl.load(a_ptr + rank[None, :] * K + cols[:, None], mask=cols[:, None] < K, other=0.0)  # [BK, R]
        acc = tl.dot(dropped, a, acc)
    tl.store(out_ptr + rows[:, None] * R + rank[None, :], acc.to(tl.bfloat16), mask=rows[:, None] < M)


@triton.jit(do_not_specialize=_VARYING + ["rows_per_split"])
def lora_grad_a_kernel(x_ptr, gd_ptr, out_ptr, bits_ptr, M, K, rows_per_split, seed_lo, seed_hi, ctr_lo, ctr_hi,
                       keep, scale, sweep: tl.constexpr, R: tl.constexpr, FROM_BITS: tl.constexpr,
                       BM: tl.constexpr, BN: tl.constexpr):
    """out[split, R, K] = g_down[rows of split]^T @ bf16(dropout(x))[rows of split, K], fp32."""
    col0 = tl.program_id(0) * BN
    split = tl.program_id(1)
    cols = col0 + tl.arange(0, BN)
    rank = tl.arange(0, R)
    acc = tl.zeros((R, BN), dtype=tl.float32)
    start = split * rows_per_split
    for m0 in range(start, start + rows_per_split, BM):
        rows = m0 + tl.arange(0, BM)
        inside = (rows[:, None] < M) & (cols[None, :] < K)
        x = tl.load(x_ptr + rows[:, None] * K + cols[None, :], mask=inside, other=0.0)
        kept = _mask(rows, col0, M, K, bits_ptr, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep, FROM_BITS, BM, BN)
        dropped = tl.where(kept, x.to(tl.float32) * scale, 0.0).to(tl.bfloat16)
        gd = tl.load(gd_ptr + rows[:, None] * R + rank[None, :], mask=rows[:, None] < M, other=0.0)  # [BM, R]
        acc = tl.dot(tl.trans(gd), dropped, acc)
    tl.store(out_ptr + split * R * K + rank[:, None] * K + cols[None, :], acc, mask=cols[None, :] < K)


@triton.jit(do_not_specialize=_VARYING)
def add_lora_grad_x_kernel(gx_ptr, gd_ptr, a_ptr, bits_ptr, M, K, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, scale,
                           sweep: tl.constexpr, R: tl.constexpr, FROM_BITS: tl.constexpr, BM: tl.constexpr,
                           BN: tl.constexpr):
    """gx[M, K] += mask * scale * bf16(g_down[M, R] @ A[R, K]), in place."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    col0 = tl.program_id(1) * BN
    cols = col0 + tl.arange(0, BN)
    rank = tl.arange(0, R)
    gd = tl.load(gd_ptr + rows[:, None] * R + rank[None, :], mask=rows[:, None] < M, other=0.0)
    a = tl.load(a_ptr + rank[:, None] * K + cols[None, :], mask=cols[None, :] < K, other=0.0)
    lora = tl.dot(gd, a).to(tl.bfloat16).to(tl.float32)  # rounded as the unfused GEMM's output
    kept = _mask(rows, col0, M, K, bits_ptr, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep, FROM_BITS, BM, BN)
    inside = (rows[:, None] < M) & (cols[None, :] < K)
    where = gx_ptr + rows[:, None] * K + cols[None, :]
    gx = tl.load(where, mask=inside, other=0.0).to(tl.float32)
    tl.store(where, (gx + tl.where(kept, lora * scale, 0.0)).to(tl.bfloat16), mask=inside)


@triton.jit(do_not_specialize=_VARYING)
def mask_kernel(out_ptr, bits_ptr, M, K, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, scale,
                sweep: tl.constexpr, FROM_BITS: tl.constexpr, WRITE_BITS: tl.constexpr, BM: tl.constexpr,
                BN: tl.constexpr):
    """The mask itself, as bytes (tests compare it with torch's): drawn, or read from bits; with
    WRITE_BITS the drawn mask is also stored as bits, as lora_down_kernel stores it."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    col0 = tl.program_id(1) * BN
    cols = col0 + tl.arange(0, BN)
    kept = _mask(rows, col0, M, K, bits_ptr, seed_lo, seed_hi, ctr_lo, ctr_hi, keep, sweep, FROM_BITS, BM, BN)
    if WRITE_BITS:
        _store_bits(bits_ptr, kept, rows, col0, M, K, BM, BN)
    inside = (rows[:, None] < M) & (cols[None, :] < K)
    tl.store(out_ptr + rows[:, None] * K + cols[None, :], kept.to(tl.int8), mask=inside)
