"""Offloading only the decoder-layer inputs trains like trl's offloading of every saved tensor.

`training.offload_scope: layer_inputs` hands trl's pack hook only the (batch, tokens, hidden)
inputs of the checkpointed layers and keeps everything else on the GPU. Real `trainer.train()`
runs (gradient checkpointing on, several micro-steps per step): the losses must match trl's own
offloading step for step, and nothing may pile up in GPU memory from step to step.
"""

import math

import pandas as pd
import pytest
import torch

from tests.tiny_gemma import tiny_text_config
from tr_gemma.chat_format import to_messages
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, prepare_training, release_optimizer_registry

pytestmark = pytest.mark.gpu

STEPS = 5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, gemma_tokenizer_dir):
    import shutil

    from transformers import Gemma3ForCausalLM

    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    config = tiny_text_config(hidden_size=256, intermediate_size=1024, head_dim=64, num_hidden_layers=6,
                              layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2)
    Gemma3ForCausalLM(config).to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    for file in gemma_tokenizer_dir.iterdir():
        shutil.copy2(file, folder / file.name)
    return folder


@pytest.fixture(scope="module")
def chat_parquet(tmp_path_factory):
    rows = [{"row_id": i, "split": "train", "text": "",
             "messages": to_messages("", f"{i} ile {i + 3} toplanınca kaç olur?", "",
                                     f"{2 * i + 3} olur. " * (1 + i % 9))} for i in range(300)]
    path = tmp_path_factory.mktemp("chat") / "data.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def _run(model_dir, chat_parquet, out, scope: str, layers: int | None) -> tuple[list[float], list[int], list]:
    """Per-step losses, memory still allocated after each step, and what went to host memory."""
    from transformers import TrainerCallback

    allocated = []

    class AllocatedAfterStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            allocated.append(torch.cuda.memory_allocated())

    recipe = load_recipe("1b", {"training": {
        "max_steps": STEPS, "max_length": 1024, "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2, "seed": 5, "attn_implementation": "packed_varlen",
        "activation_offloading": True, "offload_scope": scope, "offloaded_layers": layers,
        "fused_norm_activation": True, "fused_lora": True, "fused_rope": True, "compiled_layers": True}})
    prepared = prepare_training(TrainingJob(recipe, model_dir, chat_parquet, out, device="cuda"),
                                lambda m: None, print, extra_callbacks=[AllocatedAfterStep()])
    context = prepared.trainer.maybe_activation_offload_context
    moved = []
    pack = context.pack_hook

    def recording_pack(tensor):
        tensor_id = pack(tensor)
        if context.tracker[tensor_id][1]:  # trl's flag: this one was copied to host memory
            moved.append(tuple(tensor.shape))
        return tensor_id

    context.pack_hook = recording_pack
    prepared.trainer.train()
    losses = [entry["loss"] for entry in prepared.trainer.state.log_history if "loss" in entry]
    del prepared, context
    release_optimizer_registry()
    return losses, allocated, moved


def test_layer_inputs_offloading_matches_trl_offloading(model_dir, chat_parquet, tmp_path):
    micro_steps = STEPS * 2
    trl_losses, _, trl_moved = _run(model_dir, chat_parquet, tmp_path / "trl", "all_saved_tensors", None)
    losses, allocated, moved = _run(model_dir, chat_parquet, tmp_path / "inputs", "layer_inputs", None)
    _, _, some_moved = _run(model_dir, chat_parquet, tmp_path / "some", "layer_inputs", 2)
    print(f"OFFLOAD losses {losses} vs trl {trl_losses}; allocated after each step {allocated}; "
          f"moved per micro-step: trl {len(trl_moved) // micro_steps}, inputs {len(moved) // micro_steps}, "
          f"2 layers {len(some_moved) // micro_steps}")
    assert len(losses) == len(trl_losses) == STEPS and all(math.isfinite(loss) for loss in losses)
    assert losses == pytest.approx(trl_losses, rel=1e-2)
    # only the six layer inputs (batch, tokens, 256) leave the GPU; trl moves far more
    assert len(moved) == 6 * micro_steps and all(len(s) == 3 and s[-1] == 256 for s in moved)
    assert len(some_moved) == 2 * micro_steps
    assert len(trl_moved) > 2 * len(moved)
    assert max(allocated[1:]) - allocated[1] < 1 << 20, allocated
