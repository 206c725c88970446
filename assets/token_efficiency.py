"""Stage 3b: how efficiently Gemma 3's 262k vocabulary encodes the Turkish data."""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets._metadata import markdown_table, png_markdown
from resources.artifacts import ArtifactStore
from resources.gemma_checkpoints import GemmaCheckpoints
from resources.huggingface import HuggingFaceHub
from tr_gemma.atomic_io import atomic_file
from tr_gemma.model_sizes import SIZES
from tr_gemma.training.recipe import load_recipe
from tr_gemma.schema import ENGLISH_FIELDS


# The training sequence length of each size, as its recipe sets it.
RECIPE_MAX_LENGTHS = {size: load_recipe(size).training.max_length for size in SIZES}


class TokenEfficiencyConfig(dg.Config):
    extra_corpus_paths: list[str] = Field(
        default=[], description="Local .txt/.json/.jsonl files of your own Turkish text to analyse too."
    )
    text_field: str = Field(default="text", description="Field holding the text in .json/.jsonl corpora.")
    hub_tokenizers: list[str] = Field(
        default=[], description="Extra Hugging Face tokenizer ids to compare (needs the Hub)."
    )
    max_seq_lengths: dict[str, int] = Field(
        default=RECIPE_MAX_LENGTHS, description="Training max_seq_length per model size (default: the recipes)."
    )
    max_truncated_share: float = Field(
        default=0.01, ge=0, le=1, description="Warn when more examples than this exceed max_seq_length."
    )


@dg.asset(
    group_name="analysis",
    kinds={"pandas", "huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
    check_specs=[dg.AssetCheckSpec("few_examples_truncated", asset="token_efficiency",
                                   description="Share of training examples longer than max_seq_length is small.")],
)
def token_efficiency(
    context: dg.AssetExecutionContext,
    config: TokenEfficiencyConfig,
    gemma_checkpoints: GemmaCheckpoints,
    hf_hub: HuggingFaceHub,
    artifacts: ArtifactStore,
    raw_instructions: pd.DataFrame,
    clean_instructions: pd.DataFrame,
    gemma_chat_dataset: pd.DataFrame,
):
    """Turkish token efficiency of Gemma 3's 262,144-token vocabulary against other tokenizers.

    Tokenizers: Gemma 3 (the model's own) and the offline comparators Llama 3, GPT-4o o200k_base,
    GPT-4 cl100k_base and Qwen3 (each checked token-for-token against a reference implementation),
    plus Hub tokenizers named in config. Metrics per tokenizer, field (instruction, input,
    output) and language (Turkish vs the parallel English columns): fertility (tokens per word),
    share of words split into 2+ tokens, characters and UTF-8 bytes per token, Turkish/English
    token parity; p50/p95/p99/max content tokens per example for every tokenizer; and for the
    rendered training text (Gemma 3 tokens, the model trained): p50/p95/p99/max length, the share
    of examples over each size's max_seq_length and packing efficiency there.

    A word is a run of letters/digits; an apostrophe + suffix ("İstanbul'da"), a hyphen
    ("e-posta") or a dot/comma between digits ("1.234,56") joins runs; punctuation and emoji are
    not words; text is NFC-normalised and never lower-cased; special tokens are not counted.
    """
    from tr_gemma.charts import fertility_chart, length_histogram
    from tr_gemma.comparator_tokenizers import load_offline_comparators
    from tr_gemma.token_efficiency import (
        Corpus, analyse, claim_verdict, gemma_tokenizer_handle, length_table, parity, totals,
    )
    from tr_gemma.token_metrics import length_percentiles

    tokenizers = [gemma_tokenizer_handle(gemma_checkpoints.load_tokenizer())]
    comparators, unavailable = load_offline_comparators()
    tokenizers += [_as_handle(c) for c in comparators]
    for hub_id in config.hub_tokenizers:
        try:
            tokenizers.append(_hub_tokenizer(hub_id, hf_hub))
        except Exception as exc:  # reported, never silently dropped
            unavailable[hub_id] = f"{type(exc).__name__}: {exc}"
    for name, reason in unavailable.items():
        context.log.warning(f"Tokenizer {name} not compared: {reason}")

    corpora = [_dataset_corpus(raw_instructions, clean_instructions)]
    for path in config.extra_corpus_paths:
        from tr_gemma.text_corpora import read_text_corpus

        corpora.append(Corpus(name=path, texts={("text", "tr"): read_text_corpus(path, config.text_field)}))

    analysis = analyse(corpora, tokenizers)
    table = analysis.table
    content_lengths = analysis.example_lengths("dataset", "tr")
    tr_totals = totals(table, "dataset", "tr")
    en_totals = totals(table, "dataset", "en")
    parity_table = parity(table, "dataset")
    lengths = gemma_chat_dataset["num_tokens"].tolist()
    sizes = length_table(lengths, config.max_seq_lengths)
    percentiles = length_percentiles(lengths)
    verdict = claim_verdict(tr_totals, len(clean_instructions))

    folder = artifacts.folder(context.asset_key)
    outputs = {"metrics.parquet": table, "metrics.csv": table, "parity.csv": parity_table, "lengths.csv": sizes,
               "example_lengths.csv": content_lengths}
    for name, frame in outputs.items():
        with atomic_file(folder / name) as staging:
            frame.to_parquet(staging, index=False) if name.endswith(".parquet") else frame.to_csv(staging, index=False)
    charts = {"fertility.png": fertility_chart(tr_totals, en_totals), "lengths.png": length_histogram(lengths, config.max_seq_lengths)}
    for name, png in charts.items():
        with atomic_file(folder / name) as staging:
            staging.write_bytes(png)

    headline = _headline(table, tr_totals, parity_table)
    fertility = dict(zip(tr_totals["tokenizer"], tr_totals["fertility"]))
    over = sizes.set_index("size")["share_longer_than_max"].to_dict()
    yield dg.MaterializeResult(
        metadata={
            "verdict_on_claim": verdict,
            "summary": dg.MetadataValue.md(markdown_table(headline)),
            **{f"fertility_tr_{name}": float(value) for name, value in fertility.items()},
            "gemma3_tokens_per_example_p50": percentiles["p50"],
            "gemma3_tokens_per_example_p95": percentiles["p95"],
            "gemma3_tokens_per_example_p99": percentiles["p99"],
            "gemma3_tokens_per_example_max": percentiles["max"],
            "lengths_by_size": dg.MetadataValue.md(markdown_table(sizes)),
            "content_tokens_per_example": dg.MetadataValue.md(markdown_table(content_lengths)),
            "fertility_chart": png_markdown(charts["fertility.png"], "fertility by tokenizer"),
            "length_chart": png_markdown(charts["lengths.png"], "token length histogram"),
            "tokenizers": ", ".join(f"{t.label}{'' if t.verified_exact else ' (NOT verified exact)'}" for t in tokenizers),
            "unavailable_tokenizers": dg.MetadataValue.json(unavailable),
            "table_path": dg.MetadataValue.path(str(folder / "metrics.parquet")),
            "chart_path": dg.MetadataValue.path(str(folder / "fertility.png")),
        }
    )
    worst = max(over.values())
    yield dg.AssetCheckResult(
        check_name="few_examples_truncated",
        passed=worst <= config.max_truncated_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"worst_share_longer_than_max": worst, "limit": config.max_truncated_share},
    )


def _headline(table: pd.DataFrame, tr_totals: pd.DataFrame, parity_table: pd.DataFrame) -> pd.DataFrame:
    """One row per tokenizer: the numbers a user compares first."""
    turkish = table[(table["corpus"] == "dataset") & (table["language"] == "tr")]
    continued = turkish.groupby("tokenizer").apply(
        lambda g: (g["continued_word_share"] * g["words"]).sum() / g["words"].sum(), include_groups=False
    ).rename("continued_word_share")
    overall_parity = parity_table[parity_table["field"] == "all"].set_index("tokenizer")["parity"].rename("parity_tr_en")
    headline = tr_totals.set_index("tokenizer").join(continued).join(overall_parity).reset_index()
    return headline[["tokenizer_label", "fertility", "continued_word_share", "chars_per_token",
                     "bytes_per_token", "parity_tr_en"]].rename(columns={"tokenizer_label": "tokenizer"})


def _dataset_corpus(raw: pd.DataFrame, clean: pd.DataFrame):
    """Turkish fields of the clean rows and, where present, the parallel English of the same rows."""
    from tr_gemma.token_efficiency import Corpus

    texts = {(field, "tr"): clean[field].tolist() for field in ("instruction", "input", "output")}
    positions = clean["row_id"].to_numpy()
    for field, column in ENGLISH_FIELDS.items():
        if column in raw.columns:
            texts[(field, "en")] = [v if isinstance(v, str) else "" for v in raw[column].to_numpy()[positions]]
    return Corpus(name="dataset", texts=texts)


def _as_handle(comparator):
    from tr_gemma.token_efficiency import Tokenizer

    return Tokenizer(comparator.name, comparator.label, comparator.vocab_size, comparator.encode_batch,
                     comparator.verified_exact, comparator.verification)


def _hub_tokenizer(hub_id: str, hf_hub: HuggingFaceHub):
    """A Hugging Face tokenizer by id, at its current revision (probe first: fails fast offline)."""
    from transformers import AutoTokenizer

    from tr_gemma.hub import probe_repo
    from tr_gemma.token_efficiency import Tokenizer

    hf_hub.refuse_if_offline(f"tokenizer '{hub_id}'", "")
    resolved = probe_repo(hub_id, "main", "model", hf_hub.token, hf_hub.timeout_s)
    tokenizer = AutoTokenizer.from_pretrained(hub_id, revision=resolved.sha, token=hf_hub.token)

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"]

    return Tokenizer(hub_id, f"{hub_id}@{resolved.sha[:7]}", len(tokenizer), encode_batch, True,
                     "Hugging Face tokenizer as published")
