"""Multi-GPU training launch: the GPU resource picks torchrun from its config; rank 0 alone
reports through Pipes and writes the adapter; DDP and FSDP both run the real trainer."""

import os

import dagster as dg
import pytest

from assets.base_model import base_model
from assets.qlora_adapter import qlora_adapter
from resources.gpu import GpuInfo, GpuResource
from tests.tiny_gemma import save_tiny_text_model
from tr_gemma.training.distributed import STRATEGY_ENV, Placement, per_device_accumulation, unless_sharded

TWO_H100 = [GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 80000), GpuInfo(1, "NVIDIA H100 80GB HBM3", 81559, 80000)]


def test_activation_offloading_and_fused_norms_are_off_under_fsdp_and_on_elsewhere_as_the_recipe_asks():
    """One rule for the trainer (Placement) and the preflight (GPU resource): FSDP keeps activations on
    the GPU and the plain norms (neither lever is measured under FSDP)."""
    fsdp, ddp = Placement(0, 0, 2, "fsdp"), Placement(0, 0, 2, "ddp")
    assert fsdp.sharded and not ddp.sharded and not Placement(0, 0, 1, "fsdp").sharded
    assert unless_sharded(True, ddp.sharded) and not unless_sharded(True, fsdp.sharded)
    assert not unless_sharded(False, ddp.sharded)
    assert GpuResource(num_gpus=2, strategy="fsdp").shards_training
    assert not GpuResource(num_gpus=1, strategy="fsdp").shards_training
    assert not GpuResource(num_gpus=2, strategy="ddp").shards_training


def test_launch_is_torchrun_over_the_configured_gpus_for_training_only(monkeypatch):
    monkeypatch.setattr(GpuResource, "gpus", lambda self: TWO_H100)
    gpu = GpuResource(num_gpus=2, strategy="fsdp")
    command = gpu.launch_command("tr_gemma.training.pipes_main")
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "tr_gemma.training.pipes_main"]
    assert gpu.launch_command("tr_gemma.evaluation.pipes_main")[1:] == ["-m", "tr_gemma.evaluation.pipes_main"]
    assert gpu.launch_env()[STRATEGY_ENV] == "fsdp"
    assert GpuResource().launch_command("tr_gemma.training.pipes_main")[1:] == ["-m", "tr_gemma.training.pipes_main"]


def test_no_gpu_falls_back_to_one_cpu_process_and_too_few_gpus_fail(monkeypatch):
    monkeypatch.setattr(GpuResource, "gpus", lambda self: [])
    assert GpuResource(num_gpus=2).launch_command("tr_gemma.training.pipes_main")[1:] == ["-m", "tr_gemma.training.pipes_main"]
    monkeypatch.setattr(GpuResource, "gpus", lambda self: TWO_H100[:1])
    with pytest.raises(dg.Failure, match="num_gpus=2 but only 1 GPU"):
        GpuResource(num_gpus=2).resolve_device()


def test_fsdp_preflight_shards_only_weights_and_lora(monkeypatch):
    small = [GpuInfo(i, "NVIDIA L4", 23034, 20000) for i in range(2)]
    monkeypatch.setattr(GpuResource, "gpus", lambda self: small)
    gib = 2**30
    # 24 GiB of weights + 4 GiB per-GPU work: 16 GiB per GPU when sharded over two, 28 GiB with DDP
    assert GpuResource(num_gpus=2, strategy="fsdp").preflight(28 * gib, "28 GiB", "x", shardable_bytes=24 * gib) == "cuda"
    with pytest.raises(dg.Failure, match="Lower per_device_train_batch_size"):
        GpuResource(num_gpus=2, strategy="ddp").preflight(28 * gib, "28 GiB", "x", shardable_bytes=24 * gib)


def test_accumulation_keeps_the_global_batch():
    assert per_device_accumulation(4, 1) == (4, None)
    steps, note = per_device_accumulation(4, 2)
    assert steps == 2 and "global batch equals" in note
    steps, note = per_device_accumulation(1, 2)
    assert steps == 1 and "2x the recipe's" in note


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_qlora_adapter_trains_on_two_processes_with_rank_zero_reporting(strategy, resources, tmp_path, gemma_tokenizer_dir):
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions

    assert dg.materialize([raw_instructions, clean_instructions, gemma_chat_dataset], resources=resources).success
    tiny = save_tiny_text_model(tmp_path / "tiny", gemma_tokenizer_dir)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [base_model, qlora_adapter],
        resources={**resources, "gpu": GpuResource(device="cpu", num_gpus=2, strategy=strategy)},
        partition_key="270m",
        instance=instance,
        run_config={"ops": {
            "base_model": {"config": {"source": "path", "path": str(tiny)}},
            "qlora_adapter": {"config": {"cpu_max_steps": 2, "max_length": 128}},
        }},
    )
    assert result.success
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    steps = [line.split()[1] for line in logs if line.startswith("step ") and " loss=" in line]
    assert steps == ["1/2", "2/2"]  # one rank reports, once per step
    assert any("2 GPUs: gradient accumulation 1 is not divisible by 2" in line for line in logs)
    [materialization] = result.asset_materializations_for_node("qlora_adapter")
    # accelerate shards with FSDP on GPUs only: on CPU processes an FSDP request says so and runs DDP
    assert materialization.metadata["device"].value == "2 x cpu (ddp)"
    assert any("FSDP was requested" in line for line in logs) == (strategy == "fsdp")
    adapter = materialization.metadata["adapter_path"].value
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(os.listdir(adapter))
