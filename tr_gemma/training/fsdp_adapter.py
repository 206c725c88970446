"""Writing the LoRA adapter of an FSDP run.

PEFT's `save_pretrained(state_dict=...)` picks the adapter's entries by walking the model's module
names, and strips FSDP's wrapper name only where it leads the name. With the decoder layers and
the LoRA matrices wrapped separately (FSDP with QLoRA), the wrapper sits inside every name, no
entry matches and PEFT writes an adapter file with no tensors (seen on two H100s). The gathered
full state dict itself is complete, so the adapter is taken from its keys instead.
"""

from __future__ import annotations

from pathlib import Path

WRAPPER_NAMES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def adapter_tensors(state_dict: dict, adapter_name: str = "default") -> dict:
    """The adapter's tensors of a full model state dict, named as PEFT names them in its files."""
    tensors = {}
    for key, value in state_dict.items():
        for wrapper in WRAPPER_NAMES:
            key = key.replace(wrapper, "")
        if ".lora_" in key and f".{adapter_name}." in key:  # ...q_proj.lora_A.default.weight
            tensors[key.replace(f".{adapter_name}.", ".")] = value.detach().contiguous().cpu()
    return tensors


def save_adapter_from_full_state_dict(peft_model, state_dict: dict, folder: Path, adapter_name: str = "default") -> int:
    """Write adapter_model.safetensors + adapter_config.json into `folder`; returns the tensor count."""
    from safetensors.torch import save_file

    tensors = adapter_tensors(state_dict, adapter_name)
    if not tensors:
        raise RuntimeError("the gathered FSDP state dict holds no LoRA tensors: refusing to write an empty adapter")
    save_file(tensors, str(Path(folder) / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft_model.peft_config[adapter_name].save_pretrained(str(folder))
    return len(tensors)
