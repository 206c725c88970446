"""Stage 6: hand-off artifacts: the merged model, sample answers side by side, the model card,
and optional publishing to the Hugging Face Hub."""

import time

import dagster as dg
from pydantic import Field

from assets.base_model import read_base_model_manifest
from assets.partitions import model_sizes
from resources.artifacts import ArtifactStore
from resources.gpu import GpuResource
from resources.huggingface import HuggingFaceHub
from tr_gemma.atomic_io import atomic_file

# Upstream assets the model card reads, and whether they are partitioned by model size.
CARD_SOURCES = {
    "base_model": True, "raw_instructions": False, "clean_instructions": False, "gemma_chat_dataset": False,
    "token_efficiency": False, "qlora_adapter": True, "tr_mmlu_questions": False, "tr_mmlu_scores": True,
    "promoted_adapter": True, "merged_model": True,
}


def adapter_dir(artifacts: ArtifactStore, size: str):
    return artifacts.folder(dg.AssetKey("qlora_adapter"), size) / "adapter"


def merged_dir(artifacts: ArtifactStore, size: str):
    return artifacts.folder(dg.AssetKey("merged_model"), size) / "model"


def _require(path, asset: str) -> None:
    if not path.exists():
        raise dg.Failure(f"{asset} has not been materialized ({path} missing).", allow_retries=False)


class MergedModelConfig(dg.Config):
    logits_tolerance: float = Field(
        default=0.03, gt=0, le=1,
        description="Largest relative L2 error allowed between the merged model's logits and base + adapter (bf16 rounding).")


@dg.asset(
    partitions_def=model_sizes,
    deps=["base_model", "qlora_adapter"],
    group_name="hand_off",
    kinds={"pytorch", "peft", "safetensors"},
    owners=["team:ml-platform"],
    code_version="1",
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(
        "merged_logits_match_adapter", asset="merged_model", blocking=True,
        description="The merged model's logits equal base + adapter (PEFT, unmerged) within bf16 rounding.")],
)
def merged_model(context: dg.AssetExecutionContext, config: MergedModelConfig, gpu: GpuResource,
                 artifacts: ArtifactStore):
    """The trained LoRA adapter merged into a bf16 copy of the base weights (never into the 4-bit
    training weights): Gemma3ForCausalLM as safetensors, with the tokenizer, Gemma 3's chat
    template and a generation config that stops on `<end_of_turn>` as well as `<eos>`.

    Runs in its own process (Dagster Pipes) on the CPU, where a bf16 copy of any size fits. Before
    saving, the logits of the merged model on a Turkish chat prompt are compared with base +
    adapter; the blocking check `merged_logits_match_adapter` stops the hand-off if they differ.
    Written to a temporary folder and renamed into place.
    """
    size = context.partition_key
    manifest = read_base_model_manifest(artifacts, size)
    adapter = adapter_dir(artifacts, size)
    _require(adapter / "adapter_config.json", "qlora_adapter")
    extras = {"task": "merge", "model_dir": manifest["path"], "adapter_dir": str(adapter),
              "output_dir": str(merged_dir(artifacts, size)), "tolerance": config.logits_tolerance}
    with gpu.reserved(context):
        yield from gpu.run_module(context, "tr_gemma.handoff.pipes_main", extras).get_results()


class SampleAnswersConfig(dg.Config):
    max_new_tokens: int = Field(
        default=48, ge=1, le=2048,
        description="Most tokens generated per answer (greedy). 48 keeps the 270m CPU run near a minute.")
    cpu_threads: int = Field(
        default=1, ge=1, le=256,
        description="Threads for generation on the CPU (one decodes a small model fastest on a busy machine).")


@dg.asset(
    partitions_def=model_sizes,
    deps=["merged_model", "base_model"],
    group_name="hand_off",
    kinds={"pytorch", "huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
    pool="gpu",
)
def sample_answers(context: dg.AssetExecutionContext, config: SampleAnswersConfig, gpu: GpuResource,
                   artifacts: ArtifactStore):
    """Six fixed Turkish prompts written for this project (an everyday question, an instruction,
    a short rewrite, a math word problem, a prompt with a system instruction, a factual question)
    answered greedily by the base model and by the merged fine-tuned model, side by side.

    Same rendering as the training data (Gemma 3 has no system role: the system text goes in front
    of the user turn), same stop tokens for both models (the merged model's generation config:
    `<eos>`, `<end_of_turn>`). The table is in the metadata; every answer, its token count and
    stop reason are saved as JSONL.
    """
    size = context.partition_key
    manifest = read_base_model_manifest(artifacts, size)
    merged = merged_dir(artifacts, size)
    _require(merged / "generation_config.json", "merged_model")
    extras = {"task": "sample_answers", "base_model_dir": manifest["path"], "merged_dir": str(merged),
              "output_path": str(artifacts.folder(context.asset_key, size) / "answers.jsonl"),
              "device": gpu.resolve_device(), "max_new_tokens": config.max_new_tokens, "cpu_threads": config.cpu_threads}
    with gpu.reserved(context):
        yield from gpu.run_module(context, "tr_gemma.handoff.pipes_main", extras).get_results()


class ModelCardConfig(dg.Config):
    push_to_hub: bool = Field(default=False, description="Upload the adapter and its card to the Hugging Face Hub.")
    hub_repo_id: str = Field(default="", description="Model repo '<user or organisation>/<name>' (push_to_hub).")
    private: bool = Field(default=True, description="Create the repo private (an existing repo keeps its visibility).")


@dg.asset(
    partitions_def=model_sizes,
    deps=list(CARD_SOURCES),
    group_name="hand_off",
    kinds={"markdown", "huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
)
def model_card(context: dg.AssetExecutionContext, config: ModelCardConfig, artifacts: ArtifactStore,
               hf_hub: HuggingFaceHub) -> dg.MaterializeResult:
    """README.md for the adapter and for the merged model: base model and revision, data set and
    revision, licence notes (Gemma terms; the data set is non-commercial), recipe, training
    numbers, TR-MMLU base vs fine-tuned, the token-efficiency headline, intended use and limits.

    Generated from the metadata of the latest materialization of each upstream asset for this
    size (read from the Dagster instance), so it never drifts from the run; what was not recorded
    is written as such. Written atomically into both folders. With `push_to_hub` the adapter folder
    and its card are uploaded to a (by default private) Hub repo with HF_TOKEN.
    """
    from tr_gemma.handoff.hub_publish import HubPublishError, check_publish_settings, publish_folder
    from tr_gemma.handoff.model_card import build_model_card

    size = context.partition_key
    adapter, merged = adapter_dir(artifacts, size), merged_dir(artifacts, size)
    _require(adapter / "adapter_config.json", "qlora_adapter")
    _require(merged / "config.json", "merged_model")
    if config.push_to_hub:
        try:
            if hf_hub.offline:
                raise HubPublishError(
                    f"push_to_hub to '{config.hub_repo_id}' is impossible: the hf_hub resource is configured offline.",
                    retryable=False)
            check_publish_settings(config.hub_repo_id, hf_hub.token)
        except HubPublishError as exc:
            raise dg.Failure(f"model_card: {exc} Or set push_to_hub: false.", allow_retries=False) from None

    records = {asset: _latest_record(context.instance, asset, size if partitioned else None)
               for asset, partitioned in CARD_SOURCES.items()}
    cards = {"adapter": build_model_card(records, size, "adapter"), "merged": build_model_card(records, size, "merged")}
    paths = {"adapter": adapter / "README.md", "merged": merged / "README.md"}
    for variant, path in paths.items():
        with atomic_file(path) as staging:
            staging.write_text(cards[variant], encoding="utf-8")
    missing = sorted(asset for asset, record in records.items() if record is None)
    metadata = {
        "card": dg.MetadataValue.md(cards["merged"]),
        "adapter_card_path": dg.MetadataValue.path(str(paths["adapter"])),
        "merged_card_path": dg.MetadataValue.path(str(paths["merged"])),
        "sources": dg.MetadataValue.json({asset: record["run_id"] if record else None for asset, record in records.items()}),
        "not_recorded": ", ".join(missing) or "none",
        "pushed_to_hub": False,
    }
    if missing:
        context.log.warning(f"Not recorded for partition {size}: {', '.join(missing)}; the card says so.")

    if config.push_to_hub:
        started = time.perf_counter()
        try:
            published = publish_folder(adapter, config.hub_repo_id, hf_hub.token, config.private, hf_hub.timeout_s,
                                       what_to_do="Or set model_card config push_to_hub: false.")
        except HubPublishError as exc:
            raise dg.Failure(f"model_card: {exc} The card was written to {paths['adapter']} and {paths['merged']}.",
                             allow_retries=exc.retryable) from None
        context.log.info(f"Published {adapter} to {published.url} in {time.perf_counter() - started:.1f} s.")
        metadata.update({"pushed_to_hub": True, "hub_url": dg.MetadataValue.url(published.url),
                         "hub_commit": published.commit, "hub_private": published.private})
    return dg.MaterializeResult(metadata=metadata)


def _latest_record(instance: dg.DagsterInstance, asset: str, partition) -> dict | None:
    """Metadata, run id, time and op config of the asset's latest materialization (for `partition`)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1).records
    if not records:
        return None
    record = records[0]
    materialization = record.asset_materialization
    run = instance.get_run_by_id(record.run_id)
    op_config = (((run.run_config or {}).get("ops") or {}).get(asset) or {}).get("config") or {} if run else {}
    return {
        "metadata": {key: _plain(value) for key, value in materialization.metadata.items()},
        "run_id": record.run_id,
        "timestamp": record.timestamp,
        "config": dict(op_config),
    }


def _plain(value):
    """A metadata value as plain Python (tables are left out: the card does not use them)."""
    if isinstance(value, dg.TableMetadataValue):
        return None
    return getattr(value, "value", value)
