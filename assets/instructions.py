"""Stage 1: the Turkish instruction data set, loaded and cleaned."""


from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from assets._retry import HUB_RETRY

from assets._metadata import preview_table
from resources.artifacts import ArtifactStore
from resources.huggingface import HuggingFaceHub
from tr_gemma.atomic_io import atomic_file
from tr_gemma.cleaning import REJECT_REASONS, CleaningRules, clean_instructions as run_cleaning
from tr_gemma.embedded_data import INSTRUCTIONS_SAMPLE, file_digest
from tr_gemma.errors import PipelineInputError, SourceUnavailableError
from tr_gemma.hub_instructions import HUB_DATASET_ID, HUB_DATASET_REVISION, LICENCE_NOTE
from tr_gemma.instruction_files import read_instruction_file, validate_instruction_frame
from tr_gemma.schema import CLEAN_COLUMNS, REQUIRED_RAW_COLUMNS

SOURCES = ("embedded", "hub", "path")


class RawInstructionsConfig(dg.Config):
    source: Literal["embedded", "hub", "path"] = Field(
        default="embedded",
        description="embedded: the sample shipped with the project; hub: the Hugging Face data set; "
        "path: a local parquet/JSON/JSONL/CSV file in the same schema.",
    )
    dataset_id: str = Field(default=HUB_DATASET_ID, description="Hub data set id (source=hub).")
    revision: str = Field(default=HUB_DATASET_REVISION, description="Pinned Hub commit (source=hub).")
    split: str = Field(default="train", description="Hub split (source=hub).")
    path: str = Field(default="", description="Local file (source=path).")


@dg.asset(
    group_name="data",
    kinds={"huggingface", "pandas"},
    owners=["team:ml-platform"],
    code_version="1",
    retry_policy=HUB_RETRY,
)
def raw_instructions(
    context: dg.AssetExecutionContext, config: RawInstructionsConfig, hf_hub: HuggingFaceHub
) -> dg.Output[pd.DataFrame]:
    """The Turkish instruction data set `malhajar/alpaca-gpt4-tr` as loaded, all columns kept.

    Sources: the sample embedded in the project (default, offline), the Hugging Face Hub at a
    pinned revision (token from HF_TOKEN), or a local file. The Hub commit sha (or the file's
    content hash) is the data version, so downstream assets go stale when the data changes.
    """
    frame, version = _load_source(config, hf_hub)
    context.log.info(f"Loaded {len(frame)} rows from source '{config.source}' ({version}).")
    return dg.Output(
        frame,
        data_version=dg.DataVersion(version),
        metadata={
            "num_rows": len(frame),
            "columns": ", ".join(map(str, frame.columns)),
            "source": config.source,
            "revision": version,
            "licence": LICENCE_NOTE,
            "preview": preview_table(frame, list(REQUIRED_RAW_COLUMNS)),
        },
    )


def _load_source(config: RawInstructionsConfig, hf_hub: HuggingFaceHub) -> tuple[pd.DataFrame, str]:
    others = " or ".join(f"'{s}'" for s in SOURCES if s != config.source)
    alternatives = (
        f"Other sources: set raw_instructions config source to {others} "
        "(embedded needs no network; path reads a local file)."
    )
    try:
        if config.source == "embedded":
            return read_instruction_file(INSTRUCTIONS_SAMPLE), file_digest(INSTRUCTIONS_SAMPLE)
        if config.source == "path":
            if not config.path:
                raise PipelineInputError("raw_instructions: source='path' needs config 'path'.")
            return read_instruction_file(config.path), file_digest(config.path)
        frame, sha = hf_hub.load_instructions(config.dataset_id, config.revision, config.split, alternatives)
        validate_instruction_frame(frame, source=f"{config.dataset_id}@{sha}")
        return frame, sha
    except SourceUnavailableError as exc:
        raise dg.Failure(
            description=f"raw_instructions source 'hub' failed. {exc}", allow_retries=exc.retryable
        ) from None
    except PipelineInputError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


class CleaningConfig(dg.Config):
    drop_ai_identity: bool = Field(
        default=True, description="Drop rows with AI-identity boilerplate ('bir yapay zeka dil modeli olarak')."
    )
    max_chars_per_field: int = Field(default=20_000, gt=0, description="Longer fields are rejected.")
    min_turkish_share: float = Field(
        default=0.5, ge=0, le=1,
        description="Rows whose share of Turkish among language-marking words is lower are rejected as "
        "not_turkish (left untranslated); 0 turns the rule off.",
    )
    max_drop_rate: float = Field(default=0.2, ge=0, le=1, description="Gate: share of rows dropped.")
    max_duplicate_rate: float = Field(default=0.05, ge=0, le=1, description="Gate: share of duplicate rows.")


_CLEAN_CHECKS = ("has_required_columns", "no_empty_fields", "drop_rate_under_limit", "duplicate_rate_under_limit")


@dg.asset(
    group_name="data",
    kinds={"pandas"},
    owners=["team:ml-platform"],
    code_version="1",
    check_specs=[dg.AssetCheckSpec(name, asset="clean_instructions", blocking=True) for name in _CLEAN_CHECKS],
)
def clean_instructions(
    context: dg.AssetExecutionContext,
    config: CleaningConfig,
    artifacts: ArtifactStore,
    raw_instructions: pd.DataFrame,
):
    """Turkish-only instructions (`system`, `instruction`, `input`, `output`), NFC-normalised.

    Rows are dropped for: null or empty instruction/output, invalid Unicode, mojibake ("Ã¼"),
    literal Gemma control tokens, over-long fields, rows left in another language (not_turkish),
    AI-identity boilerplate (optional) and exact duplicates after normalisation. Every dropped row is saved to `rejects.jsonl` with its reason.
    """
    missing = [c for c in REQUIRED_RAW_COLUMNS if c not in raw_instructions.columns]
    if missing:
        raise dg.Failure(f"raw_instructions lacks Turkish column(s) {missing}.", allow_retries=False)
    result = run_cleaning(
        raw_instructions,
        CleaningRules(drop_ai_identity=config.drop_ai_identity, max_chars_per_field=config.max_chars_per_field,
                      min_turkish_share=config.min_turkish_share),
    )
    counts = result.counts
    rejects_path = artifacts.folder(context.asset_key) / "rejects.jsonl"
    with atomic_file(rejects_path) as staging:  # written first: a failed run still shows its rejects
        result.rejects.to_json(staging, orient="records", lines=True, force_ascii=False)
    if result.clean.empty:
        raise dg.Failure(
            f"Zero rows left after cleaning {result.input_rows} rows (rejected per reason: "
            f"{ {reason: n for reason, n in counts.items() if n} }); every row and its reason is in {rejects_path}.",
            allow_retries=False,
        )

    drop_rate = 1 - len(result.clean) / result.input_rows
    duplicate_rate = counts["duplicate"] / result.input_rows
    empty_cells = int((result.clean[["instruction", "output"]] == "").sum().sum())
    yield dg.Output(
        result.clean,
        metadata={
            "num_rows": len(result.clean),
            "input_rows": result.input_rows,
            "drop_rate": drop_rate,
            **{f"rejected_{reason}": counts[reason] for reason in REJECT_REASONS},
            "rejects_path": dg.MetadataValue.path(str(rejects_path)),
            "preview": preview_table(result.clean, ["system", "instruction", "input", "output"]),
        },
    )
    yield dg.AssetCheckResult(
        check_name="has_required_columns",
        passed=tuple(result.clean.columns) == CLEAN_COLUMNS,
        metadata={"columns": ", ".join(result.clean.columns)},
    )
    yield dg.AssetCheckResult(
        check_name="no_empty_fields", passed=empty_cells == 0, metadata={"empty_cells": empty_cells}
    )
    yield dg.AssetCheckResult(
        check_name="drop_rate_under_limit",
        passed=drop_rate <= config.max_drop_rate,
        metadata={"drop_rate": drop_rate, "limit": config.max_drop_rate},
    )
    yield dg.AssetCheckResult(
        check_name="duplicate_rate_under_limit",
        passed=duplicate_rate <= config.max_duplicate_rate,
        metadata={"duplicate_rate": duplicate_rate, "limit": config.max_duplicate_rate},
    )
