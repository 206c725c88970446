"""`keep_projection_outputs`: the checkpointed recompute takes o_proj's and down_proj's outputs from
the first forward instead of running their NF4 GEMMs, and training is bitwise unchanged, dropout
masks included. The GPU side (with trl's offloading, against PEFT) is in tests/gpu/test_train_parity.py."""

import pytest
import torch

from tests.tiny_qlora import loss_and_grads, qlora_model, save_tiny_checkpoint
from tr_gemma.errors import PipelineInputError
from tr_gemma.training import fused_lora
from tr_gemma.training.fused_lora import fuse_lora
from tr_gemma.training.kept_outputs import KEPT_PROJECTIONS, keep_projection_outputs
from tr_gemma.training.recipe import load_recipe
from tr_gemma.training.sft import TrainingPreflightError, _check_kept_outputs_recipe


def _fused_model(folder, dropout: float):
    model = qlora_model(folder)
    if dropout:
        for module in model.modules():
            if hasattr(module, "lora_dropout"):
                module.lora_dropout["default"] = torch.nn.Dropout(dropout)
    assert fuse_lora(model) == 14
    return model


MLP = ("o_proj", "gate_proj", "up_proj", "down_proj")
EVERY = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("projections", [KEPT_PROJECTIONS, MLP, EVERY], ids=["default", "mlp", "every"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_kept_outputs_train_bitwise_like_the_recomputed_ones(tmp_path, dropout, projections):
    save_tiny_checkpoint(tmp_path)
    ref_loss, ref_grads = loss_and_grads(_fused_model(tmp_path, dropout))
    model = _fused_model(tmp_path, dropout)
    assert keep_projection_outputs(model, projections) == 2
    loss, grads = loss_and_grads(model)
    assert loss == ref_loss
    assert grads.keys() == ref_grads.keys() and len(grads) == 28
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        assert torch.equal(grad, ref_grads[name]), name


@pytest.mark.parametrize("projections", [KEPT_PROJECTIONS, MLP, EVERY], ids=["default", "mlp", "every"])
def test_the_recompute_skips_the_kept_projections_gemms(tmp_path, monkeypatch, projections):
    """Per layer: 7 NF4 GEMMs forward, 7 in the plain recompute, 7 - kept with outputs kept."""
    save_tiny_checkpoint(tmp_path)
    calls = []
    real = fused_lora._nf4_linear
    monkeypatch.setattr(fused_lora, "_nf4_linear", lambda *a: calls.append(1) or real(*a))
    loss_and_grads(_fused_model(tmp_path, 0.1))
    plain = len(calls)
    calls.clear()
    model = _fused_model(tmp_path, 0.1)
    keep_projection_outputs(model, projections)
    loss_and_grads(model)
    assert (plain, len(calls)) == (2 * 14, 2 * (14 - len(projections)))


def test_prefetching_without_kept_outputs_is_refused_when_the_recipe_loads():
    with pytest.raises(PipelineInputError, match="prefetch_kept_outputs .* needs training.keep_projection_outputs"):
        load_recipe("27b", {"training": {"keep_projection_outputs": False, "prefetch_kept_outputs": True}})


def test_a_projection_named_twice_is_refused():
    with pytest.raises(PipelineInputError, match="kept_projections names up_proj more than once"):
        load_recipe("27b", {"training": {"kept_projections": ["up_proj", "o_proj", "up_proj"]}})


def test_evaluation_runs_the_layers_as_before(tmp_path):
    save_tiny_checkpoint(tmp_path)
    ids = torch.randint(3, 512, (1, 16))
    plain, kept = _fused_model(tmp_path, 0.0).eval(), _fused_model(tmp_path, 0.0).eval()
    keep_projection_outputs(kept)
    with torch.no_grad():
        assert torch.equal(kept(input_ids=ids).logits, plain(input_ids=ids).logits)


def test_projections_not_fused_are_refused_by_layer(tmp_path):
    save_tiny_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="decoder layer 0: o_proj, down_proj must be LoRA projections rerouted by fuse_lora"):
        keep_projection_outputs(qlora_model(tmp_path))


@pytest.mark.parametrize("override,message", [
    ({"fused_lora": False}, "keep_projection_outputs needs training.fused_lora"),
    ({"gradient_checkpointing": False, "activation_offloading": False},
     "keep_projection_outputs needs training.gradient_checkpointing"),
    ({"compiled_layers": True}, "keep_projection_outputs cannot run with training.compiled_layers"),
    ({"cuda_graph_layers": True}, "keep_projection_outputs cannot run with training.cuda_graph_layers"),
    ({"prefetch_kept_outputs": True, "activation_offloading": False}, "prefetch_kept_outputs .* needs "
     "training.activation_offloading: true"),
    ({"prefetch_kept_outputs": True, "offload_scope": "layer_inputs", "offloaded_layers": 8},
     "prefetch_kept_outputs .* no training.offloaded_layers count"),
])
def test_recipes_the_kept_outputs_cannot_serve_are_refused_by_name(override, message):
    recipe = load_recipe("27b", {"training": {"keep_projection_outputs": True, **override}})
    with pytest.raises(TrainingPreflightError, match=message):
        _check_kept_outputs_recipe(recipe)
    _check_kept_outputs_recipe(load_recipe("27b", {"training": {"keep_projection_outputs": True}}))


def test_the_recompute_keeps_its_tensors_from_an_offloading_context(tmp_path):
    """trl's offloading context is open through backward (its training_step wraps both). The
    recompute's saved tensors must not reach its hooks: each would be copied to host memory and
    straight back (the first 27B run of this lever lost 15% so). Only what forward saves may."""
    save_tiny_checkpoint(tmp_path)
    model = _fused_model(tmp_path, 0.1)
    keep_projection_outputs(model)
    packed = {"forward": 0, "backward": 0}
    phase = ["forward"]

    def pack(tensor):
        packed[phase[0]] += 1
        return tensor

    torch.manual_seed(2)
    ids = torch.randint(3, 512, (1, 48))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
        phase[0] = "backward"
        loss.backward()
    assert packed["forward"] > 0 and packed["backward"] == 0


def test_memory_plan_counts_the_kept_outputs_where_layer_inputs_are_kept():
    """Each checkpointed layer keeps two more tokens x hidden bf16 tensors: on the GPU for every
    layer without offloading, for the 2 in flight with it."""
    from tr_gemma.training.memory import estimate_training_memory

    config = {"hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62, "vocab_size": 262_208,
              "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128}

    def plan(**kw):
        return estimate_training_memory(config, 2, 4096, 32, attention="packed_varlen", **kw).activations

    two_outputs = 2 * (2 * 4096 * 5376 * 2)
    assert plan(kept_outputs=True) - plan() == 62 * two_outputs
    assert plan(offloading=True, kept_outputs=True) - plan(offloading=True) == 2 * two_outputs
    # the 27B recipe's set: up_proj's intermediate-wide output on top
    with_up = two_outputs + 2 * 4096 * 21504 * 2
    assert plan(offloading=True, kept_outputs=True, kept_projections=("o_proj", "up_proj", "down_proj")) \
        - plan(offloading=True) == 2 * with_up
