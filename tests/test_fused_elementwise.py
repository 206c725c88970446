"""The fused RMSNorm/GeGLU kernels (torch.compile) give the loss and LoRA gradients of the plain
Gemma 3 modules, on a tiny NF4 + LoRA model with gradient checkpointing, as the trainer runs it."""

import pytest
import torch

from tests.tiny_gemma import tiny_text_config
from tr_gemma.training.fused_elementwise import fuse_norms_and_activations


def _qlora_model(folder):
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, Gemma3ForCausalLM

    model = Gemma3ForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16, attn_implementation="sdpa", device_map={"": "cpu"},
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16))
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:  # B non-zero, so every adapter carries gradient
                param.data = (torch.randn(param.shape, generator=generator) * 0.05).to(torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model


def _loss_and_grads(model):
    torch.manual_seed(2)
    ids = torch.randint(3, 512, (1, 48))
    position_ids = torch.cat([torch.arange(20), torch.arange(28)])[None]  # two packed documents
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids, position_ids=position_ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.float() for n, p in model.named_parameters() if p.requires_grad}


def test_fused_norm_and_geglu_match_the_plain_modules(tmp_path):
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    config = tiny_text_config(vocab_size=512, hidden_size=64, intermediate_size=128, head_dim=32,
                              num_attention_heads=2, num_key_value_heads=1)
    Gemma3ForCausalLM(config).save_pretrained(tmp_path, safe_serialization=True)

    plain_loss, plain_grads = _loss_and_grads(_qlora_model(tmp_path))
    fused_model = _qlora_model(tmp_path)
    # 2 layers x (4 layer norms + q/k norms) + the final norm; 2 MLPs
    assert fuse_norms_and_activations(fused_model) == (13, 2)
    fused_loss, fused_grads = _loss_and_grads(fused_model)

    assert fused_loss == pytest.approx(plain_loss, rel=1e-2)
    assert fused_grads.keys() == plain_grads.keys() and len(fused_grads) == 28
    for name, grad in fused_grads.items():
        cosine = torch.nn.functional.cosine_similarity(grad.flatten(), plain_grads[name].flatten(), dim=0)
        assert cosine > 0.99, name
        assert grad.norm() == pytest.approx(plain_grads[name].norm().item(), rel=0.05), name


def test_fused_geglu_refuses_another_activation(tmp_path):
    from transformers import Gemma3ForCausalLM

    model = Gemma3ForCausalLM(tiny_text_config(vocab_size=512, hidden_activation="gelu"))
    with pytest.raises(ValueError, match="hidden_activation"):
        fuse_norms_and_activations(model)


def test_fused_norm_backward_survives_saved_tensors_that_come_back_contiguous():
    """Activation offloading copies saved tensors to host memory and back as contiguous tensors.
    Gemma 3 applies q_norm/k_norm to a transposed view; a compiled kernel that saved that view
    asserts on its strides in backward (seen on an H100 with offloading)."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    def pack(tensor):  # what an offloading hook hands back: same values, contiguous
        return torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor)

    plain, fused = Gemma3RMSNorm(16), Gemma3RMSNorm(16)
    fuse_norms_and_activations(fused)
    grads = []
    for norm in (plain, fused):
        x = torch.randn(1, 24, 3, 16, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = norm(x.transpose(1, 2))  # (batch, heads, seq, dim) view, as in Gemma3Attention
        out.pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-4)
