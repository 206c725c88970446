"""Gemma 3's q/k RMSNorm and rotary embedding as one torch.compile-generated kernel (`fused_rope`).

Between the q/k/v projections and attention, Gemma 3 normalises q and k (in fp32, each its own
chain of kernels, on transposed views) and rotates them: `q * cos + rotate_half(q) * sin`
is a multiply, two slices, a negation, a concatenation, a second multiply and an add per tensor,
each a kernel over a (tokens x heads x 256) tensor, again in the checkpointed recompute and about
as many in backward. Here the attention forward is transformers' own, except that q and k are
normalised and rotated in their token-major layout by one compiled function (one kernel
forward, one or two backward). A KV cache (generation) takes transformers' path unchanged.
"""

from __future__ import annotations

import types

from tr_gemma.training.fused_elementwise import gemma3_rms_norm, kernel


def _rotate_half(x):
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _qk_norm_rope(q, k, q_weight, k_weight, eps: float, cos, sin):
    """q, k: (batch, tokens, heads, head_dim); cos, sin: (batch, tokens, head_dim)."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    q = gemma3_rms_norm(q, q_weight, eps)
    k = gemma3_rms_norm(k, k_weight, eps)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None,
                       past_key_values=None, **kwargs):
    """Gemma3Attention.forward (transformers 5.23) with the fused q/k norm and rotation."""
    from transformers.models.gemma3.modeling_gemma3 import ALL_ATTENTION_FUNCTIONS, eager_attention_forward

    if past_key_values is not None:
        return self._hf_forward(hidden_states, position_embeddings, attention_mask, past_key_values, **kwargs)
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    query = self.q_proj(hidden_states).view(hidden_shape)
    key = self.k_proj(hidden_states).view(hidden_shape)
    value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    cos, sin = position_embeddings
    query, key = kernel(_qk_norm_rope)(query, key, self.q_norm.weight, self.k_norm.weight, self.q_norm.eps,
                                       cos, sin)
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
    attn_output, attn_weights = attention(
        self, query.transpose(1, 2), key.transpose(1, 2), value, attention_mask,
        dropout=self.attention_dropout if self.training else 0.0, scaling=self.scaling,
        sliding_window=self.sliding_window, **kwargs)
    attn_output = attn_output.reshape(*input_shape, -1).contiguous()
    return self.o_proj(attn_output), attn_weights


def fuse_qk_norm_rope(model) -> int:
    """Route every Gemma3Attention of `model` through `_attention_forward` (in place, this model
    only); returns how many were rerouted."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3Attention

    fused = 0
    for module in model.modules():
        if isinstance(module, Gemma3Attention):
            if module.q_norm.eps != module.k_norm.eps:
                raise ValueError(f"fused q/k norm expects one epsilon, {module.q_norm.eps} != {module.k_norm.eps}")
            module._hf_forward = types.MethodType(Gemma3Attention.forward, module)
            module.forward = types.MethodType(_attention_forward, module)
            fused += 1
    return fused
