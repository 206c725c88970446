"""The project's fast training path computes the same loss and gradients as the plain baseline.

Project path: the trainer's own model (tr_gemma.training.sft.prepare_training with each speed
lever of LEVERS: varlen FlashAttention, flex attention, Liger's RMSNorm/RoPE/GeGLU kernels, activation
offloading to host memory, fused RMSNorm/GeGLU kernels from torch.compile; trl's
fused LM head) and its compute_loss. Baseline: the
same checkpoint in NF4 + PEFT, SDPA, the model's standard loss over full logits. Both get the
same LoRA weights (B made non-zero so every adapter carries gradient) and one row of three packed
documents (position ids restart at each), so both must keep attention inside each document and
inside Gemma 3's sliding window; the results must agree within bf16 tolerance.
"""

import pandas as pd
import pytest
import torch

from tests.tiny_gemma import tiny_text_config
from tr_gemma.chat_format import to_messages
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, prepare_training

pytestmark = pytest.mark.gpu


def _checkpoint(folder, tokenizer_dir):
    import shutil

    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    config = tiny_text_config(hidden_size=256, intermediate_size=1024, head_dim=64)
    Gemma3ForCausalLM(config).to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    for file in tokenizer_dir.iterdir():
        shutil.copy2(file, folder / file.name)
    return folder


def _lora_state(model):
    return {n: p for n, p in model.named_parameters() if "lora_" in n}


LEVERS = {
    "default": {},
    "varlen": {"attn_implementation": "packed_varlen"},
    "flex": {"attn_implementation": "flex_attention"},
    "liger": {"use_liger_kernel": True},
    "flex+liger": {"attn_implementation": "flex_attention", "use_liger_kernel": True},
    "varlen+liger": {"attn_implementation": "packed_varlen", "use_liger_kernel": True},
    "offload": {"activation_offloading": True},
    "varlen+offload": {"attn_implementation": "packed_varlen", "activation_offloading": True},
    "fused": {"attn_implementation": "sdpa", "activation_offloading": False, "fused_norm_activation": True},
    "varlen+offload+fused": {"attn_implementation": "packed_varlen", "activation_offloading": True,
                             "fused_norm_activation": True},
    "fused_lora": {"attn_implementation": "sdpa", "activation_offloading": False, "fused_norm_activation": False,
                   "fused_lora": True},
    "varlen+offload+fused+fused_lora": {"attn_implementation": "packed_varlen", "activation_offloading": True,
                                        "fused_norm_activation": True, "fused_lora": True},
    "fused_rope": {"attn_implementation": "sdpa", "activation_offloading": False, "fused_norm_activation": False,
                   "fused_rope": True},
    "varlen+offload+fused+fused_lora+fused_rope": {"attn_implementation": "packed_varlen",
                                                   "activation_offloading": True, "fused_norm_activation": True,
                                                   "fused_lora": True, "fused_rope": True},
    "varlen+offload+fused+fused_lora+fused_rope+compiled_layers": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "compiled_layers": True},
    "varlen+offload_inputs+fused+fused_lora+fused_rope+compiled_layers": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "offload_scope": "layer_inputs",
        "fused_norm_activation": True, "fused_lora": True, "fused_rope": True, "compiled_layers": True},
    "varlen+offload_inputs+fused+fused_lora+fused_rope": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "offload_scope": "layer_inputs",
        "fused_norm_activation": True, "fused_lora": True, "fused_rope": True},
    "varlen+fused+fused_lora+fused_rope+compiled_layers": {
        "attn_implementation": "packed_varlen", "activation_offloading": False, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "compiled_layers": True},
    "varlen+offload+fused+fused_lora+fused_rope+graphs": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "cuda_graph_layers": True},
    "varlen+offload+fused+fused_lora+fused_rope+compiled_layers+graphs": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "compiled_layers": True, "cuda_graph_layers": True},
    "varlen+graphs (PEFT's LoRA)": {"attn_implementation": "packed_varlen", "activation_offloading": False,
                                    "fused_lora": False, "compiled_layers": False, "cuda_graph_layers": True},
    # the 27B recipe's levers with the o_proj/down_proj outputs kept (trl's offloading moves them too)
    "varlen+offload+fused+fused_lora+fused_rope+kept_outputs": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "keep_projection_outputs": True, "compiled_layers": False,
        "cuda_graph_layers": False, "compact_dropout_masks": False},
    # LoRA dropout drawn inside the Triton LoRA kernels: torch's masks, never stored
    "varlen+offload+fused+fused_lora+fused_rope+kernel_dropout": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "dropout_in_lora_kernels": True, "compiled_layers": False,
        "cuda_graph_layers": False, "compact_dropout_masks": False},
    "varlen+offload+fused+fused_lora+fused_rope+kept_outputs+kernel_dropout": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "keep_projection_outputs": True, "dropout_in_lora_kernels": True,
        "compiled_layers": False, "cuda_graph_layers": False, "compact_dropout_masks": False},
    # up_proj's output kept too, all of it moved and fetched back a layer ahead by the checkpoint itself
    "varlen+offload+fused+fused_lora+fused_rope+kept_outputs_up+prefetch+kernel_dropout": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "keep_projection_outputs": True,
        "kept_projections": ["o_proj", "up_proj", "down_proj"], "prefetch_kept_outputs": True,
        "dropout_in_lora_kernels": True, "compiled_layers": False, "cuda_graph_layers": False,
        "compact_dropout_masks": False},
    # and the recompute's kernels store each mask as bits for backward's (the 27B recipe's levers)
    "varlen+offload+fused+fused_lora+fused_rope+kept_outputs_up+prefetch+kernel_dropout_bits": {
        "attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
        "fused_lora": True, "fused_rope": True, "keep_projection_outputs": True,
        "kept_projections": ["o_proj", "up_proj", "down_proj"], "prefetch_kept_outputs": True,
        "dropout_in_lora_kernels": True, "kernel_dropout_bitmask": True, "compiled_layers": False,
        "cuda_graph_layers": False, "compact_dropout_masks": False},
}


@pytest.mark.parametrize("lever", list(LEVERS))
def test_fast_path_loss_and_gradients_match_the_plain_baseline(tmp_path, gemma_tokenizer_dir, lever):
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    check_parity(tmp_path, gemma_tokenizer_dir, "cuda", LEVERS[lever])


# compiled_layers included: while the checkpoint was traced into its graph, the recompute drew fresh
# masks (gradient cosine 0.85 here, 2026-11-27); the eager checkpoint around it replays them
@pytest.mark.parametrize("lever", ["fused_lora", "varlen+offload+fused+fused_lora",
                                   "varlen+offload_inputs+fused+fused_lora+fused_rope",
                                   "varlen+offload_inputs+fused+fused_lora+fused_rope+compiled_layers",
                                   "varlen+fused+fused_lora+fused_rope+compiled_layers",
                                   "varlen+offload+fused+fused_lora+fused_rope+graphs",
                                   "varlen+offload+fused+fused_lora+fused_rope+compiled_layers+graphs",
                                   "varlen+offload+fused+fused_lora+fused_rope+kept_outputs",
                                   "varlen+offload+fused+fused_lora+fused_rope+kernel_dropout",
                                   "varlen+offload+fused+fused_lora+fused_rope+kept_outputs+kernel_dropout",
                                   "varlen+offload+fused+fused_lora+fused_rope+kept_outputs_up+prefetch+kernel_dropout",
                                   "varlen+offload+fused+fused_lora+fused_rope+kept_outputs_up+prefetch+kernel_dropout_bits"])
def test_fused_lora_keeps_peft_dropout(tmp_path, gemma_tokenizer_dir, lever):
    """With LoRA dropout on, the fused function draws the same masks as PEFT (same RNG calls in
    the same order, the checkpointed recompute replaying them), so loss and gradients still agree."""
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    check_parity(tmp_path, gemma_tokenizer_dir, "cuda", LEVERS[lever], dropout=0.1)


def check_parity(tmp_path, gemma_tokenizer_dir, device: str, levers: dict, dropout: float = 0.0) -> None:
    """Loss and LoRA gradients of the trainer's model equal the plain baseline's (bf16 tolerance)."""
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, Gemma3ForCausalLM

    model_dir = _checkpoint(tmp_path / "model", gemma_tokenizer_dir)
    rows = [{"row_id": i, "split": "train", "text": "", "messages": to_messages("", f"{i} artı {i}?", "", f"{2 * i}.")}
            for i in range(8)]
    data = tmp_path / "chat.parquet"
    pd.DataFrame(rows).to_parquet(data)
    recipe = load_recipe("1b", {"training": {**levers, "max_steps": 1, "max_length": 512},
                                "cpu": {"max_length": 512}, "lora": {"lora_dropout": dropout}})
    prepared = prepare_training(TrainingJob(recipe, model_dir, data, tmp_path / "out", device=device),
                                lambda m: None, print)
    project = prepared.trainer.model
    # as trainer.train() does first: the checkpointed recompute (and what offloading then sees) is under test too
    project.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in _lora_state(project).items():
            param.copy_(torch.randn(param.shape, generator=generator).mul(0.02).to(param.dtype))

    baseline = Gemma3ForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation="sdpa", device_map={"": 0 if device == "cuda" else "cpu"},
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16))
    baseline = get_peft_model(baseline, LoraConfig(r=32, lora_alpha=64, lora_dropout=dropout, task_type="CAUSAL_LM",
                                                   target_modules=recipe.lora.target_modules))
    with torch.no_grad():
        targets = _lora_state(baseline)
        for name, param in _lora_state(project).items():
            targets[name].data = param.detach().clone()
    baseline.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    baseline.enable_input_require_grads()
    baseline.train()

    torch.manual_seed(2)
    ids = torch.randint(3, 262_144, (1, 512), device=device)
    labels = ids.clone()
    labels[:, :128] = -100  # a prompt: no loss there
    # three packed documents, as the trainer's padding-free batches have them
    position_ids = torch.cat([torch.arange(n, device=device) for n in (200, 180, 132)])[None]

    project.train()
    torch.manual_seed(3)  # the same dropout masks in both stacks
    # the trainer's training_step runs forward and backward inside its offloading context
    with prepared.trainer.maybe_activation_offload_context, torch.autocast(device, dtype=torch.bfloat16):
        project_loss = prepared.trainer.compute_loss(project, {"input_ids": ids, "labels": labels,
                                                               "position_ids": position_ids})
        project_loss.backward()
    torch.manual_seed(3)
    with torch.autocast(device, dtype=torch.bfloat16):
        baseline_loss = baseline(input_ids=ids, labels=labels, position_ids=position_ids).loss
    baseline_loss.backward()

    project_grads, baseline_grads = _lora_state(project), _lora_state(baseline)
    assert len(project_grads) == len(baseline_grads) > 0
    off = []
    for name, param in project_grads.items():
        mine, theirs = param.grad.float().flatten(), baseline_grads[name].grad.float().flatten()
        cosine = torch.nn.functional.cosine_similarity(mine, theirs, dim=0).item()
        norm_ratio = (mine.norm() / theirs.norm()).item()
        if not (cosine > 0.99 and abs(norm_ratio - 1) < 0.05):
            off.append(f"{name.split('model.')[-1]} cos={cosine:.4f} norm={norm_ratio:.3f}")
    # one line that says which part differs, even when the log is cut
    print(f"PARITY {levers} dropout {dropout}: loss {project_loss.item():.5f} vs {baseline_loss.item():.5f}; "
          f"{len(off)}/{len(project_grads)} gradients off: {off[:6]}")
    assert project_loss.item() == pytest.approx(baseline_loss.item(), rel=1e-2)
    assert not off, off[:6]
