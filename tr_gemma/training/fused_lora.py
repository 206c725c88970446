"""LoRA over an NF4 base weight as one autograd function (the `fused_lora` recipe lever).

PEFT computes a 4-bit LoRA projection as bitsandbytes' matmul, a defensive `clone()` of its
output, dropout, two skinny GEMMs, a multiply by the scaling and an add, each its own kernel and
saved tensor, seven projections per layer, again in the checkpointed recompute, and as many
kernels in backward. The kernel-level profile of a 4B step (docs/benchmarks.md) puts the clone,
the scaling and the adds at about 15% of the GPU time, and their Python adds to the time the GPU
waits for the host. Here the forward is the same bitsandbytes NF4 matmul, then the LoRA product added
into its output inside the GEMM (`addmm_`, scaling as its alpha); the backward dequantises the
weight once and accumulates the LoRA input gradient into the base one the same way. Numerics
follow PEFT under bf16 autocast: dropout on the LoRA input only (same RNG calls, so the
checkpointed recompute draws the same mask), LoRA in the compute dtype, fp32 adapter gradients.
With `dropout_in_lora_kernels` the same masks are drawn inside Triton LoRA kernels instead
(`kernel_dropout`): no dropped copy, no mask kept for backward.
Inside a decoder layer compiled whole (`compiled_layers`) the same computation runs as two
torch.library ops (`graph_ops`), which torch.compile can place in its graph.
"""

from __future__ import annotations

import contextlib
import functools
import types

from tr_gemma.training import kernel_dropout


def _nf4_linear(x, packed, state):
    """x @ W.T for an NF4 weight, as bitsandbytes' training matmul (`MatMul4Bit`) computes it:
    dequantise, then one GEMM."""
    import torch

    return torch.nn.functional.linear(x, _dequantize(packed, state, x.dtype))


def _cuda_dequantizers():
    """bitsandbytes' CUDA dequantisation kernels without its op dispatch (None where absent).

    The public `dequantize_4bit` goes through two `torch.library` dispatches, a `QuantState`
    check and a cast per call: 546 calls per 1B micro-step (fused forward, recompute, backward),
    on a step the host already limits. Same kernels, same arguments."""
    try:
        from bitsandbytes.backends.cuda.ops import _dequantize_4bit_impl, _dequantize_blockwise_impl
    except ImportError:  # another bitsandbytes layout: the public path below
        return None
    return _dequantize_blockwise_impl, _dequantize_4bit_impl


_CUDA_DEQUANTIZERS = ()  # () not looked up yet; None: this bitsandbytes has no such kernels


def _dequantize(packed, state, dtype):
    """The NF4 weight in `dtype` (double-quantised absmax first restored, as bitsandbytes does)."""
    global _CUDA_DEQUANTIZERS
    import torch
    from bitsandbytes import functional as bnbf

    direct = packed.is_cuda and dtype in (torch.bfloat16, torch.float16)
    if direct and _CUDA_DEQUANTIZERS == ():  # imported on first CUDA use: the module needs a CUDA torch
        _CUDA_DEQUANTIZERS = _cuda_dequantizers()
    if not direct or _CUDA_DEQUANTIZERS is None:
        return bnbf.dequantize_4bit(packed.view(-1, 1), state).to(dtype)
    blockwise, nf4 = _CUDA_DEQUANTIZERS
    absmax = state.absmax
    if state.nested:
        absmax = torch.empty(absmax.shape, dtype=torch.float32, device=packed.device)
        blockwise(state.absmax, state.state2.absmax, state.state2.code, state.state2.blocksize, torch.float32,
                  out=absmax)
        absmax.add_(state.offset)
    out = torch.empty(state.shape, dtype=dtype, device=packed.device)
    nf4(packed, absmax, state.blocksize, state.quant_type, dtype, out=out)
    return out


def _quant_parts(state) -> tuple:
    """A QuantState as the tensors and numbers a torch.library op can take (see `graph_ops`)."""
    nested = state.nested
    return (state.absmax, state.code, state.state2.absmax if nested else None, state.state2.code if nested else None,
            state.offset if nested else None, state.blocksize, state.state2.blocksize if nested else 0,
            state.quant_type)


def _quant_state(absmax, code, absmax2, code2, offset, blocksize: int, blocksize2: int, quant_type: str,
                 shape, dtype):
    """The QuantState `_quant_parts` took apart."""
    import torch
    from bitsandbytes.functional import QuantState

    state2 = None if absmax2 is None else QuantState(absmax2, code=code2, blocksize=blocksize2, dtype=torch.float32)
    return QuantState(absmax, shape=torch.Size(shape), code=code, blocksize=blocksize, quant_type=quant_type,
                      dtype=dtype, offset=offset, state2=state2)


def _lora_factors(lora_a, lora_b, dtype, scaling: float) -> tuple:
    """A, and B times the scaling, in the compute dtype: (r, in) and (out, r), so the scaling costs nothing here."""
    return lora_a.to(dtype), lora_b.to(dtype) * scaling


def _lora_down(x2, lora_a, lora_b, scaling: float, dropout_p: float, in_kernels: bool = False,
               kernel_bits: bool = False) -> tuple:
    """(dropped input, LoRA down-projection, A and scaled B in the compute dtype, dropout mask or None).
    With `in_kernels` (`dropout_in_lora_kernels`) and an input torch's vector dropout kernel would
    take, the mask is a `KernelMask`: drawn inside the LoRA kernel, no dropped copy (None); with
    `kernel_bits` (`kernel_dropout_bitmask`) the kernel also stores it as bits, in `mask.bits`."""
    import torch

    a, b_scaled = _lora_factors(lora_a, lora_b, x2.dtype, scaling)
    if dropout_p > 0 and in_kernels and kernel_dropout.usable(x2):
        mask = kernel_dropout.draw(x2, dropout_p)
        mask.bits = kernel_dropout.bits_for(x2) if kernel_bits else None
        return None, kernel_dropout.lora_down(x2, a, mask, mask.bits), a, b_scaled, mask
    if dropout_p > 0:
        dropped, mask = torch.native_dropout(x2, dropout_p, True)
    else:
        dropped, mask = x2, None
    return dropped, dropped @ a.t(), a, b_scaled, mask   # down: (tokens, r)


def _forward_2d(x2, packed, state, lora_a, lora_b, scaling: float, dropout_p: float,
                in_kernels: bool = False, kernel_bits: bool = False) -> tuple:
    """(out, dropped input, LoRA down-projection, A and scaled B in the compute dtype, dropout mask or None)."""
    dropped, down, a, b_scaled, mask = _lora_down(x2, lora_a, lora_b, scaling, dropout_p, in_kernels, kernel_bits)
    out = _nf4_linear(x2, packed, state)        # a fresh tensor: safe to add into in place
    out.addmm_(down, b_scaled.t())
    return out, dropped, down, a, b_scaled, mask


_BIT_SHIFTS: dict = {}  # device -> 0..7, a byte's bit positions
ROWS_PER_BLOCK = 2048  # LoRA's share of the input gradient is added in row blocks of this many tokens


def _bit_shifts(device):
    import torch

    if device not in _BIT_SHIFTS:  # made by a kernel, not copied from the host: safe inside graph capture
        _BIT_SHIFTS[device] = torch.arange(8, dtype=torch.uint8, device=device)
    return _BIT_SHIFTS[device]


def _pack_mask(mask, compact: bool = True):
    """A dropout mask kept for backward at one bit per element, not one byte (a projection's
    input-sized mask lives through the whole recompute: `compact_dropout_masks`); unchanged when
    not `compact` or where the width is not a multiple of 8. Packing costs GPU time: a recipe
    lever for sizes that need the memory."""
    import torch

    if mask is None or not compact or mask.shape[-1] % 8:
        return mask
    bits = mask.reshape(*mask.shape[:-1], -1, 8).to(torch.uint8).bitwise_left_shift_(_bit_shifts(mask.device))
    return bits.sum(-1, dtype=torch.uint8)


def _unpack_mask(packed, width: int):
    import torch

    if packed is None or packed.dtype == torch.bool:
        return packed
    bits = packed.unsqueeze(-1).bitwise_right_shift(_bit_shifts(packed.device)).bitwise_and_(1)
    return bits.view(torch.bool).reshape(*packed.shape[:-1], width)  # 0/1 bytes are bools: no second copy


def _redropped(x2, mask, dropout_p: float):
    """The dropped input again, from the input and the mask: what native_dropout returned
    (x * mask / (1 - p)), rebuilt in backward rather than kept from forward to backward (a whole
    input-sized tensor per projection, live through the checkpointed recompute). Bitwise as
    each device's kernel rounds it."""
    if mask is None:
        return x2
    import numpy as np
    import torch

    if x2.is_cuda:  # fused_dropout: float(x) * (1 / float32(1 - p)) * mask, rounded once
        return torch.ops.aten.native_dropout_backward(x2, mask, 1.0 / float(np.float32(1.0 - dropout_p)))
    return x2 * mask.to(x2.dtype).div_(1.0 - dropout_p)  # the CPU kernel: a mask in x's dtype, scaled


def _backward_2d(g, x2, down, a, b_scaled, mask, packed, state, scaling: float, dropout_p: float,
                 needs: tuple, param_dtypes: tuple, bits=None) -> tuple:
    """(grad of the 2-D input x2, grad A, grad B), None where `needs` says not wanted. `bits`: a
    `KernelMask`'s mask as its forward kernel stored it (read, not drawn again), or None."""
    g_down = g @ b_scaled                       # (tokens, r), scaling already inside
    grad_x = grad_a = grad_b = None
    need_x, need_a, need_b = needs
    if isinstance(mask, kernel_dropout.KernelMask):  # the mask read from bits or drawn again inside each kernel
        if need_a:
            grad_a = kernel_dropout.lora_grad_a(x2, g_down, mask, bits).to(param_dtypes[0])
        if need_x:
            grad_x = g @ _dequantize(packed, state, g.dtype)
            kernel_dropout.add_lora_grad_x(grad_x, g_down, a, mask, bits)
        if need_b:
            grad_b = (g.t() @ down).mul_(scaling).to(param_dtypes[1])
        return grad_x, grad_a, grad_b
    # grad A first: its rebuilt dropped input is freed before grad x exists, so at most one
    # (tokens, in) tensor plus one row block is live at a time
    if need_a:
        grad_a = (g_down.t() @ _redropped(x2, mask, dropout_p)).to(param_dtypes[0])
    if need_x:
        grad_x = g @ _dequantize(packed, state, g.dtype)
        if mask is None:
            grad_x.addmm_(g_down, a)
        else:  # in place, by row blocks: LoRA's masked share needs no (tokens, in) temporary
            scale = 1.0 / (1.0 - dropout_p)
            for start in range(0, g_down.shape[0], ROWS_PER_BLOCK):
                rows = slice(start, start + ROWS_PER_BLOCK)
                grad_x[rows].add_((g_down[rows] @ a).mul_(mask[rows]), alpha=scale)
    if need_b:
        grad_b = (g.t() @ down).mul_(scaling).to(param_dtypes[1])
    return grad_x, grad_a, grad_b


def _function():
    import torch

    class LoraNF4(torch.autograd.Function):
        """y = x W^T + s * dropout(x) A^T B^T with W frozen in NF4; gradients for x, A and B."""

        @staticmethod
        def forward(ctx, x, packed, state, lora_a, lora_b, scaling: float, dropout_p: float, compact: bool,
                    kept_out=None, in_kernels: bool = False, kernel_bits: bool = False):
            shape = x.shape
            x2 = x.reshape(-1, shape[-1])
            if kept_out is None:
                out, _, down, a, b_scaled, mask = _forward_2d(x2, packed, state, lora_a, lora_b, scaling, dropout_p,
                                                              in_kernels, kernel_bits)
            else:  # the output this call's forward already computed (`kept_outputs`): only what backward needs
                _, down, a, b_scaled, mask = _lora_down(x2, lora_a, lora_b, scaling, dropout_p, in_kernels,
                                                        kernel_bits)
                out = kept_out.reshape(-1, kept_out.shape[-1])
            ctx.kernel_mask = mask if isinstance(mask, kernel_dropout.KernelMask) else None
            if ctx.kernel_mask is not None:  # its bits (or nothing: backward draws it again) are saved, as
                # a saved tensor, so a checkpoint's first forward drops them like the rest
                mask, ctx.kernel_mask.bits = ctx.kernel_mask.bits, None
            ctx.save_for_backward(x2, down, a, b_scaled, _pack_mask(mask, compact and ctx.kernel_mask is None))
            ctx.packed, ctx.state, ctx.scaling, ctx.dropout_p = packed, state, scaling, dropout_p
            ctx.param_dtypes = (lora_a.dtype, lora_b.dtype)
            return out.view(*shape[:-1], out.shape[-1])

        @staticmethod
        def backward(ctx, grad_out):
            x2, down, a, b_scaled, saved_mask = ctx.saved_tensors
            if ctx.kernel_mask is not None:
                mask, bits = ctx.kernel_mask, saved_mask
            else:
                mask, bits = _unpack_mask(saved_mask, x2.shape[-1]), None
            g = grad_out.reshape(-1, grad_out.shape[-1]).to(x2.dtype)
            need_x, _, _, need_a, need_b = ctx.needs_input_grad[:5]
            grad_x, grad_a, grad_b = _backward_2d(g, x2, down, a, b_scaled, mask, ctx.packed, ctx.state,
                                                  ctx.scaling, ctx.dropout_p, (need_x, need_a, need_b),
                                                  ctx.param_dtypes, bits)
            if grad_x is not None:
                grad_x = grad_x.view(*grad_out.shape[:-1], grad_x.shape[-1])
            return grad_x, None, None, grad_a, grad_b, None, None, None, None, None, None

    return LoraNF4


@functools.cache
def graph_ops():
    """The fused function as torch.library ops, for decoder layers compiled whole (`compiled_layers`).

    torch.compile cannot trace bitsandbytes' ctypes kernel calls or an autograd function that keeps a
    QuantState on its context; an op with a fake (shape-only) implementation and a registered
    backward is opaque to it, and the code around it still fuses. The quantisation state travels
    as tensors and numbers (`_quant_parts`). Returns (forward, backward) op handles."""
    import torch

    # schemas spelled out: this module's postponed annotations are strings custom_op cannot resolve
    quant = "Tensor packed, Tensor absmax, Tensor code, Tensor? absmax2, Tensor? code2, Tensor? offset, " \
            "int blocksize, int blocksize2, str quant_type"

    # Tagged as drawing random numbers (its dropout masks), so the compiler never reruns it in a
    # backward graph to save memory, where it would draw other masks. The names change whenever the
    # ops' meaning or outputs do, because compile caches key graphs on op names, not on tags or
    # implementations: "seeded" since the untagged op of stop 19 (its checkpointed recompute drew
    # fresh masks), "bitmask" since the mask output is bit-packed (a graph cached for the byte mask
    # fails its own output size checks).
    @torch.library.custom_op("tr_gemma::seeded_nf4_lora_bitmask", mutates_args=(), schema=(
        f"(Tensor x, {quant}, int out_features, Tensor lora_a, Tensor lora_b, float scaling, float dropout_p, "
        "bool compact) -> (Tensor, Tensor, Tensor)"), tags=(torch.Tag.nondeterministic_seeded,))
    def nf4_lora(x, packed, absmax, code, absmax2, code2, offset, blocksize, blocksize2, quant_type, out_features,
                 lora_a, lora_b, scaling, dropout_p, compact):
        """(output, LoRA down-projection, dropout mask, bit-packed if `compact` and the width allows
        it); the mask empty without dropout."""
        state = _quant_state(absmax, code, absmax2, code2, offset, blocksize, blocksize2, quant_type,
                             (out_features, x.shape[-1]), x.dtype)
        out, _, down, _, _, mask = _forward_2d(x.reshape(-1, x.shape[-1]), packed, state, lora_a, lora_b,
                                               scaling, dropout_p)
        mask = x.new_empty(0, dtype=torch.bool) if mask is None else _pack_mask(mask, compact)
        return out.view(*x.shape[:-1], out_features), down, mask

    @nf4_lora.register_fake
    def _(x, packed, absmax, code, absmax2, code2, offset, blocksize, blocksize2, quant_type, out_features,
          lora_a, lora_b, scaling, dropout_p, compact):
        tokens = x.numel() // x.shape[-1]
        width = x.shape[-1]
        if dropout_p <= 0:
            mask = x.new_empty(0, dtype=torch.bool)
        elif not compact or width % 8:
            mask = x.new_empty(tokens, width, dtype=torch.bool)
        else:
            mask = x.new_empty(tokens, width // 8, dtype=torch.uint8)
        return x.new_empty(*x.shape[:-1], out_features), x.new_empty(tokens, lora_a.shape[0]), mask

    @torch.library.custom_op("tr_gemma::nf4_lora_bitmask_backward", mutates_args=(), schema=(
        f"(Tensor grad_out, Tensor x, Tensor down, Tensor mask, {quant}, Tensor lora_a, "
        "Tensor lora_b, float scaling, float dropout_p) -> (Tensor, Tensor, Tensor)"))
    def nf4_lora_backward(grad_out, x, down, mask, packed, absmax, code, absmax2, code2, offset, blocksize,
                          blocksize2, quant_type, lora_a, lora_b, scaling, dropout_p):
        """(grad x, grad A, grad B)."""
        x2 = x.reshape(-1, x.shape[-1])
        g = grad_out.reshape(-1, grad_out.shape[-1]).to(x.dtype)
        state = _quant_state(absmax, code, absmax2, code2, offset, blocksize, blocksize2, quant_type,
                             (g.shape[-1], x2.shape[-1]), x.dtype)
        with_dropout = dropout_p > 0
        grad_x, grad_a, grad_b = _backward_2d(
            g, x2, down, *_lora_factors(lora_a, lora_b, x.dtype, scaling),
            _unpack_mask(mask, x2.shape[-1]) if with_dropout else None, packed, state, scaling, dropout_p,
            (True, True, True),
            (lora_a.dtype, lora_b.dtype))
        return grad_x.view(x.shape), grad_a, grad_b

    @nf4_lora_backward.register_fake
    def _(grad_out, x, down, mask, packed, absmax, code, absmax2, code2, offset, blocksize, blocksize2,
          quant_type, lora_a, lora_b, scaling, dropout_p):
        return x.new_empty(x.shape), torch.empty_like(lora_a), torch.empty_like(lora_b)

    def setup_context(ctx, inputs, output):
        (x, packed, absmax, code, absmax2, code2, offset, blocksize, blocksize2, quant_type, _, lora_a, lora_b,
         scaling, dropout_p, _) = inputs
        _, down, mask = output
        ctx.save_for_backward(x, down, mask, packed, absmax, code, absmax2, code2, offset, lora_a, lora_b)
        ctx.numbers = (blocksize, blocksize2, quant_type, scaling, dropout_p)

    def backward(ctx, grad_out, *_):
        x, down, mask, packed, absmax, code, absmax2, code2, offset, lora_a, lora_b = ctx.saved_tensors
        blocksize, blocksize2, quant_type, scaling, dropout_p = ctx.numbers
        grad_x, grad_a, grad_b = nf4_lora_backward(grad_out, x, down, mask, packed, absmax, code, absmax2,
                                                   code2, offset, blocksize, blocksize2, quant_type, lora_a,
                                                   lora_b, scaling, dropout_p)
        return (grad_x,) + (None,) * 10 + (grad_a, grad_b, None, None, None)

    nf4_lora.register_autograd(backward, setup_context=setup_context)
    return nf4_lora, nf4_lora_backward


_LORA_NF4 = None


def lora_nf4(x, packed, state, lora_a, lora_b, scaling: float, dropout_p: float, compact: bool = False,
             kept_out=None, in_kernels: bool = False, kernel_bits: bool = False):
    """Apply the fused function (built once: importing torch stays out of module import). With
    `kept_out`, the output an earlier call on the same input and RNG state returned: the NF4 GEMM
    is skipped, the dropout mask and LoRA down-projection backward needs are drawn again. With
    `in_kernels`, dropout is drawn inside the LoRA kernels where the input allows (`kernel_dropout`);
    with `kernel_bits` too, the forward kernel stores the mask as bits for backward's kernels."""
    global _LORA_NF4
    if _LORA_NF4 is None:
        _LORA_NF4 = _function()
    return _LORA_NF4.apply(x, packed, state, lora_a, lora_b, scaling, dropout_p, compact, kept_out, in_kernels,
                           kernel_bits)


class KeptOutputs:
    """Outputs of the projections marked `_keep_output`, in call order: collected during a
    checkpointed layer's first forward, handed back in the same order during its recompute
    (`tr_gemma.training.kept_outputs`)."""

    def __init__(self, outputs: list, replay: bool):
        self.outputs, self.replay, self.used = outputs, replay, 0

    def next(self):
        if self.used >= len(self.outputs):
            raise RuntimeError(f"the recompute asked for kept output {self.used + 1} of {len(self.outputs)}: "
                               "the layer ran other projections than in its forward")
        self.used += 1
        return self.outputs[self.used - 1]


_KEPT: KeptOutputs | None = None


@contextlib.contextmanager
def keeping_outputs(outputs: list, replay: bool):
    """Within: marked projections append their outputs to `outputs` (replay False) or take them
    from it instead of running their NF4 GEMM (replay True)."""
    global _KEPT
    previous, _KEPT = _KEPT, KeptOutputs(outputs, replay)
    try:
        yield _KEPT
    finally:
        _KEPT = previous


def _fused_forward(self, x, *args, **kwargs):
    """peft's lora.bnb.Linear4bit.forward for one plain LoRA adapter; anything else goes to PEFT."""
    import torch

    active = self.active_adapters
    if (self.disable_adapters or self.merged or args or kwargs or len(active) != 1
            or active[0] not in self.lora_A or active[0] in self.lora_variant):
        return self._peft_forward(x, *args, **kwargs)
    name = active[0]
    base = self.base_layer
    p = getattr(self.lora_dropout[name], "p", 0.0) if self.training else 0.0  # nn.Identity when 0
    inp_dtype = x.dtype
    compute = base.compute_dtype or x.dtype
    weight, lora_a, lora_b = base.weight, self.lora_A[name].weight, self.lora_B[name].weight
    scaling = float(self.scaling[name])
    compact = getattr(self, "_compact_dropout_masks", False)
    if torch.compiler.is_compiling():  # in a compiled decoder layer: the same function as an op (graph_ops)
        out = torch.ops.tr_gemma.seeded_nf4_lora_bitmask(x.to(compute), weight, *_quant_parts(weight.quant_state),
                                          weight.quant_state.shape[0], lora_a, lora_b, scaling, p, compact)[0]
    else:
        keeping = _KEPT if getattr(self, "_keep_output", False) else None
        kept = keeping.next() if keeping is not None and keeping.replay else None
        # bits only where backward can follow: not in a kept-outputs checkpoint's first forward (grad off)
        kernel_bits = getattr(self, "_kernel_mask_bits", False) and torch.is_grad_enabled()
        out = lora_nf4(x.to(compute), weight, weight.quant_state, lora_a, lora_b, scaling, p, compact, kept,
                       getattr(self, "_dropout_in_kernels", False), kernel_bits)
        if keeping is not None and not keeping.replay:
            keeping.outputs.append(out)
    return out.to(inp_dtype)


def fuse_lora(model) -> int:
    """Route every PEFT LoRA layer over a bitsandbytes NF4 weight through `LoraNF4` (in place, this
    model only); returns how many layers were rerouted. Layers with a bias, DoRA or another
    variant keep PEFT's forward."""
    from peft.tuners.lora.bnb import Linear4bit as LoraLinear4bit

    fused = 0
    for module in model.modules():
        if not isinstance(module, LoraLinear4bit) or module.base_layer.bias is not None:
            continue
        if getattr(module.base_layer.weight, "quant_state", None) is None:
            continue
        if getattr(module.base_layer.weight.quant_state, "packing_format_for_cpu", False):
            continue  # bitsandbytes' CPU inference layout: its own kernel only
        module._peft_forward = types.MethodType(LoraLinear4bit.forward, module)
        module.forward = types.MethodType(_fused_forward, module)
        fused += 1
    return fused


def _mark_fused(model, attribute: str) -> int:
    """Set `attribute` on every projection of `model` rerouted by fuse_lora; returns how many."""
    count = 0
    for module in model.modules():
        if hasattr(module, "_peft_forward"):  # rerouted by fuse_lora
            setattr(module, attribute, True)
            count += 1
    return count


def compact_dropout_masks(model) -> int:
    """Keep the dropout masks of every fused LoRA projection of `model` at one bit per element from
    forward to backward (the `compact_dropout_masks` recipe lever); returns how many projections."""
    return _mark_fused(model, "_compact_dropout_masks")


def kernel_dropout_bitmask(model) -> int:
    """Let the LoRA-down kernel of every fused projection of `model` store its dropout mask as bits
    for backward's kernels (the `kernel_dropout_bitmask` recipe lever); returns how many projections."""
    return _mark_fused(model, "_kernel_mask_bits")


def dropout_in_lora_kernels(model) -> int:
    """Draw the LoRA dropout of every fused projection of `model` inside its LoRA kernels (the
    `dropout_in_lora_kernels` recipe lever, `kernel_dropout`); returns how many projections."""
    return _mark_fused(model, "_dropout_in_kernels")
