"""Attention over packed rows through PyTorch's own variable-length FlashAttention kernel.

The trainer packs documents without padding: trl flattens each micro-batch into one row, marks
where each document starts in `position_ids` and hands the boundaries on as `cu_seq_lens_*`.
SDPA has to turn that into a dense block-diagonal mask over the whole row (8,192 x 8,192 at
2 x 4,096) and its kernels compute every masked block. The varlen kernel visits only each
document's causal part, and on Gemma 3's local layers only the 512/1024-token window.
`torch.nn.attention.varlen` ships it with PyTorch (CUDA only), so no flash-attn build is needed.
"""

from __future__ import annotations

NAME = "packed_varlen"  # no "flash" in it: transformers would look for a Hub kernel of that name


def register() -> None:
    """Make `attn_implementation="packed_varlen"` loadable (idempotent).

    The name has no mask function in transformers, so no dense mask is built for it either.
    """
    from transformers import AttentionInterface

    try:
        import torch.nn.attention.varlen  # noqa: F401
    except ImportError as exc:
        import torch

        raise RuntimeError(f"training.attn_implementation={NAME} needs torch.nn.attention.varlen "
                           f"(PyTorch 2.10 or later); this is torch {torch.__version__}. "
                           "Use attn_implementation: sdpa.") from exc
    AttentionInterface.register(NAME, varlen_attention_forward)


def sequence_boundaries(position_ids, batch: int, length: int, device):
    """Cumulative document starts over the flattened batch, and the longest document.

    A document starts where its position restarts at 0 and at the start of every row.
    """
    import torch

    if position_ids is None:
        starts = torch.arange(0, batch * length, length, device=device)
    else:
        flat = position_ids.reshape(-1)
        is_start = flat == 0
        is_start[::length] = True
        starts = is_start.nonzero().flatten()
    total = torch.tensor([batch * length], device=device, dtype=starts.dtype)
    cu = torch.cat([starts, total]).to(torch.int32)
    return cu, int(cu.diff().max())


_last_boundaries: tuple | None = None  # (version/shape key, the tensor they were read from, cu, longest)


def _boundaries_once(kwargs: dict, batch: int, length: int, device):
    """Document boundaries of this micro-batch, computed at its first layer only.

    Every layer (and the checkpointed recompute) gets the same `position_ids` / `cu_seq_lens_q`
    tensors; finding the boundaries reads them on the host, a GPU sync that, once per layer,
    leaves the GPU idle while the host queues the next kernels.
    """
    import torch

    global _last_boundaries
    source = kwargs.get("cu_seq_lens_q")
    if source is None:
        source = kwargs.get("position_ids")
    key = (getattr(source, "_version", None), batch, length, str(device))  # plus the same tensor object
    if _last_boundaries is not None and _last_boundaries[1] is source and _last_boundaries[0] == key:
        return _last_boundaries[2], _last_boundaries[3]
    cu = kwargs.get("cu_seq_lens_q")
    if cu is not None and batch == 1 and int(cu[-1]) == length:
        cu = cu.to(device=device, dtype=torch.int32)
        longest = int(kwargs.get("max_length_q") or cu.diff().max())
    else:
        cu, longest = sequence_boundaries(kwargs.get("position_ids"), batch, length, device)
    _last_boundaries = (key, source, cu, longest)
    return cu, longest


BOUNDARIES = "packed_boundaries"  # the keyword `attach` adds to every forward: (cu, longest)


def attach(model) -> int:
    """Find the packed documents' boundaries once per forward, before the decoder layers (a pre-hook on
    every Gemma 3 text model in `model`), and pass them to each attention call; returns how many.

    A decoder layer compiled whole (`compiled_layers`) cannot read them itself: finding them reads
    position ids on the host. Transformers hands the model's extra keywords on to attention."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3TextModel

    text_models = [module for module in model.modules() if isinstance(module, Gemma3TextModel)]
    for text_model in text_models:
        text_model.register_forward_pre_hook(_add_boundaries, with_kwargs=True)
    return len(text_models)


def _add_boundaries(module, args, kwargs):
    import torch

    tokens = args[0] if args else kwargs.get("input_ids")
    if tokens is None:
        tokens = kwargs.get("inputs_embeds")
    if tokens is None or kwargs.get("past_key_values") is not None:
        return None  # generation with a KV cache: the attention finds its own way (or refuses)
    batch, length = tokens.shape[:2]
    cu, longest = _boundaries_once(kwargs, batch, length, tokens.device)
    torch._dynamo.maybe_mark_dynamic(cu, 0)  # one compiled graph for any number of documents
    return args, {**kwargs, BOUNDARIES: (cu, longest)}


def varlen_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                             sliding_window=None, softcap=None, **kwargs):
    """transformers' attention-function signature: (batch, heads, seq, dim) in, (batch, seq, heads, dim) out."""
    import torch
    from torch.nn.attention.varlen import varlen_attn

    if dropout:
        raise ValueError("packed_varlen attention has no dropout; Gemma 3 trains with attention_dropout=0")
    if softcap:
        raise ValueError("packed_varlen attention has no logit soft-capping (Gemma 3 does not use it)")
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    if kwargs.get(BOUNDARIES) is not None:
        cu, longest = kwargs[BOUNDARIES]
        if torch.compiler.is_compiling():
            # a Python int in a graph is a constant: one recompile per new longest document. The
            # row length bounds it; the kernel skips blocks past each document's end.
            longest = batch * length
    elif torch.compiler.is_compiling():
        raise RuntimeError(f"{NAME} attention inside a compiled layer needs its boundaries found before the "
                           "layers: call varlen_attention.attach(model) first")
    else:
        cu, longest = _boundaries_once(kwargs, batch, length, query.device)

    def tokens_major(x, repeat: int = 1):
        x = x.transpose(1, 2).reshape(batch * length, x.shape[1], dim)
        # the kernel in torch 2.11 takes as many key/value heads as query heads
        return x.repeat_interleave(repeat, dim=1) if repeat > 1 else x

    dtype = query.dtype if query.dtype in (torch.bfloat16, torch.float16) else torch.bfloat16
    q = tokens_major(query).to(dtype)
    k = tokens_major(key, heads // kv_heads).to(dtype)
    v = tokens_major(value, heads // kv_heads).to(dtype)
    # transformers' sliding window W lets a token see itself and the W - 1 tokens before it
    window = (sliding_window - 1, 0) if sliding_window else (-1, 0)
    out = varlen_attn(q, k, v, cu, cu, longest, longest, scale=scaling, window_size=window)
    return out.reshape(batch, length, heads, dim).to(query.dtype), None
