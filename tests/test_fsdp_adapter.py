"""The adapter of an FSDP run is written from the gathered state dict, not by PEFT's name walk.

On two H100s an FSDP QLoRA run trained normally but PEFT wrote an adapter file with no tensors:
FSDP's wrapper name sits inside the module names of the wrapped layers, so PEFT's selection
matched nothing. FSDP does not run on CPU processes here, so the test rebuilds that naming: a tiny
Gemma 3 PEFT model whose decoder layers sit inside `_fsdp_wrapped_module` wrappers.
"""

import pytest
import torch
from safetensors.torch import load_file

from tests.tiny_gemma import tiny_text_config
from tr_gemma.training.fsdp_adapter import adapter_tensors, save_adapter_from_full_state_dict


class Wrapper(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self._fsdp_wrapped_module = module

    def forward(self, *args, **kwargs):
        return self._fsdp_wrapped_module(*args, **kwargs)


def _peft_model():
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(Gemma3ForCausalLM(tiny_text_config(vocab_size=64)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():  # trained adapters: B is no longer zero
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    return model


def test_wrapped_layers_lose_every_tensor_in_peft_but_not_here(tmp_path):
    from peft import PeftModel
    from transformers import Gemma3ForCausalLM

    model = _peft_model()
    reference = tmp_path / "reference"
    model.save_pretrained(reference)
    expected = load_file(reference / "adapter_model.safetensors")
    full_state = model.state_dict()  # what FSDP's full state dict holds: names without the wrapper

    layers = model.base_model.model.model.layers
    for i in range(len(layers)):
        layers[i] = Wrapper(layers[i])
    peft_written = tmp_path / "peft"
    model.save_pretrained(peft_written, state_dict=full_state)
    assert len(load_file(peft_written / "adapter_model.safetensors")) == 0  # the failure seen on the GPUs

    ours = tmp_path / "ours"
    ours.mkdir()
    assert save_adapter_from_full_state_dict(model, full_state, ours) == len(expected) == 12
    written = load_file(ours / "adapter_model.safetensors")
    assert written.keys() == expected.keys()
    assert all(torch.equal(written[k], expected[k]) for k in expected)

    torch.manual_seed(0)
    base = Gemma3ForCausalLM(tiny_text_config(vocab_size=64))
    loaded = PeftModel.from_pretrained(base, ours)
    ids = torch.tensor([[2, 5, 7, 9]])
    reference_model = PeftModel.from_pretrained(Gemma3ForCausalLM(tiny_text_config(vocab_size=64)), reference)
    reference_model.base_model.model.load_state_dict(base.state_dict(), strict=False)
    assert torch.allclose(loaded(input_ids=ids).logits, reference_model(input_ids=ids).logits)


def test_wrapper_names_inside_keys_are_removed_and_an_empty_adapter_is_refused(tmp_path):
    weight = torch.ones(2, 2)
    keys = {"base_model.model.model.layers.0._fsdp_wrapped_module.self_attn.q_proj.lora_A.default.weight": weight,
            "base_model.model.model.layers.0._fsdp_wrapped_module.self_attn.q_proj.base_layer.weight": weight}
    assert list(adapter_tensors(keys)) == ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    with pytest.raises(RuntimeError, match="no LoRA tensors"):
        save_adapter_from_full_state_dict(_peft_model(), {"x.weight": weight}, tmp_path)
