"""A tiny NF4 + LoRA Gemma 3 on the CPU, trained as the trainer runs it, to compare fused code
paths (tests/test_fused_elementwise.py, tests/test_fused_lora.py) against the plain modules."""

import pytest
import torch

from tests.tiny_gemma import tiny_text_config


def save_tiny_checkpoint(folder):
    """2 layers, GQA, head_dim 32: small, but every block of the 4-bit path is aligned."""
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    config = tiny_text_config(vocab_size=512, hidden_size=64, intermediate_size=128, head_dim=32,
                              num_attention_heads=2, num_key_value_heads=1)
    Gemma3ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def qlora_model(folder):
    """NF4 double-quant + LoRA r=8 on the 7 projections, B non-zero, in train mode with gradient checkpointing (CPU)."""
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
    # from_pretrained returns eval mode, where transformers skips checkpointing and dropout is off
    return model.train()


def loss_and_grads(model):
    """Loss and LoRA gradients of one packed row of two documents under bf16 autocast."""
    torch.manual_seed(2)
    ids = torch.randint(3, 512, (1, 48))
    position_ids = torch.cat([torch.arange(20), torch.arange(28)])[None]  # two packed documents
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids, position_ids=position_ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.float() for n, p in model.named_parameters() if p.requires_grad}


def assert_same_training(reference: tuple, candidate: tuple) -> None:
    """Loss within 1%; all 28 LoRA gradients non-zero, cosine > 0.99 and norm within 5%."""
    (ref_loss, ref_grads), (loss, grads) = reference, candidate
    assert loss == pytest.approx(ref_loss, rel=1e-2)
    assert grads.keys() == ref_grads.keys() and len(grads) == 28
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        cosine = torch.nn.functional.cosine_similarity(grad.flatten(), ref_grads[name].flatten(), dim=0)
        assert cosine > 0.99, name
        assert grad.norm() == pytest.approx(ref_grads[name].norm().item(), rel=0.05), name


def assert_generation_keeps_transformers_path(reroute, rerouted: int, tolerance: float) -> None:
    """`reroute(model)` swaps the forward of `rerouted` modules of a tiny Gemma 3: without a KV cache
    its logits stay within `tolerance` of the plain model's; greedy generation with a cache is
    exactly unchanged."""
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    model = Gemma3ForCausalLM(tiny_text_config(vocab_size=512)).eval()
    prompt = torch.randint(3, 512, (1, 6))
    expected = model.generate(prompt, max_new_tokens=4, do_sample=False)
    with torch.no_grad():
        plain_logits = model(prompt, use_cache=False).logits
    assert reroute(model) == rerouted
    with torch.no_grad():  # without a cache the forward takes the rerouted path
        rerouted_logits = model(prompt, use_cache=False).logits
    torch.testing.assert_close(rerouted_logits, plain_logits, rtol=tolerance, atol=tolerance)
    assert torch.equal(model.generate(prompt, max_new_tokens=4, do_sample=False), expected)
