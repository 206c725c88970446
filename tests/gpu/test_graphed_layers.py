"""Decoder layers replayed as CUDA graphs (`cuda_graph_layers`) compute what the eager layers do,
on later micro-batches too: other token counts and document counts go through the same static
buffers, and LoRA dropout draws the same masks in the replayed recompute."""

import pandas as pd
import pytest
import torch

from tests.gpu.test_train_parity import _checkpoint, _lora_state
from tr_gemma.chat_format import to_messages
from tr_gemma.training.graphed_layers import graph_pool_bytes
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingJob, prepare_training

pytestmark = pytest.mark.gpu


def _batch(lengths, seed: int):
    torch.manual_seed(seed)
    tokens = sum(lengths)
    ids = torch.randint(3, 262_144, (1, tokens), device="cuda")
    labels = ids.clone()
    labels[:, :16] = -100
    position_ids = torch.cat([torch.arange(n, device="cuda") for n in lengths])[None]
    return {"input_ids": ids, "labels": labels, "position_ids": position_ids}


def _loss_and_grads(trainer, model, batch, seed: int):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with trainer.maybe_activation_offload_context, torch.autocast("cuda", dtype=torch.bfloat16):
        loss = trainer.compute_loss(model, batch)
        loss.backward()
    return loss.item(), {name: p.grad.detach().float().clone() for name, p in _lora_state(model).items()}


@pytest.mark.parametrize("compiled", [False, True])
def test_graphs_match_eager_layers_over_changing_micro_batches(tmp_path, gemma_tokenizer_dir, compiled):
    if not torch.cuda.is_available():
        pytest.fail("GPU test run without a CUDA device")
    model_dir = _checkpoint(tmp_path / "model", gemma_tokenizer_dir)
    rows = [{"row_id": i, "split": "train", "text": "", "messages": to_messages("", f"{i} artı {i}?", "", f"{2 * i}.")}
            for i in range(8)]
    pd.DataFrame(rows).to_parquet(tmp_path / "chat.parquet")
    levers = {"attn_implementation": "packed_varlen", "activation_offloading": True, "fused_norm_activation": True,
              "fused_lora": True, "fused_rope": True, "compiled_layers": compiled, "cuda_graph_layers": True}
    recipe = load_recipe("1b", {"training": {**levers, "max_steps": 1, "max_length": 512},
                                "cpu": {"max_length": 512}, "lora": {"lora_dropout": 0.1}})
    prepared = prepare_training(TrainingJob(recipe, model_dir, tmp_path / "chat.parquet", tmp_path / "out",
                                            device="cuda"), lambda m: None, print)
    trainer, model = prepared.trainer, prepared.trainer.model
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in _lora_state(model).values():
            param.copy_(torch.randn(param.shape, generator=generator).mul(0.02).to(param.dtype))
    layers = [m for m in model.modules() if hasattr(m, "_layer_graphs")]
    assert layers

    # capacity 2 x 512 = 1,024 tokens: a full one, a short one with more documents, a one-document one
    batches = [_batch([400, 300, 324], 10), _batch([90, 50, 33, 120, 7, 100], 11), _batch([700], 12)]
    graphed = [_loss_and_grads(trainer, model, batch, seed=20 + i) for i, batch in enumerate(batches)]
    assert all(layer._layer_graphs.forward_graph is not None for layer in layers)
    pool = graph_pool_bytes()
    assert pool > 0

    for layer in layers:  # the same model, each layer as it ran before the graphs
        layer.forward = layer._layer_graphs.eager_forward
    eager = [_loss_and_grads(trainer, model, batch, seed=20 + i) for i, batch in enumerate(batches)]

    for i, ((g_loss, g_grads), (e_loss, e_grads)) in enumerate(zip(graphed, eager)):
        off = []
        for name, mine in g_grads.items():
            theirs = e_grads[name]
            cosine = torch.nn.functional.cosine_similarity(mine.flatten(), theirs.flatten(), dim=0).item()
            ratio = (mine.norm() / theirs.norm()).item()
            if not (cosine > 0.995 and abs(ratio - 1) < 0.02):
                off.append(f"{name.split('model.')[-1]} cos={cosine:.4f} norm={ratio:.3f}")
        print(f"GRAPHS compiled={compiled} batch {i}: loss {g_loss:.5f} vs eager {e_loss:.5f}; "
              f"{len(off)}/{len(g_grads)} gradients off {off[:4]}; graph pool {pool / 2**20:.1f} MiB")
        assert g_loss == pytest.approx(e_loss, rel=2e-3)
        assert not off, off[:4]
