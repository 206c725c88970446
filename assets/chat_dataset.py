"""Stage 2: every clean instruction rendered as a Gemma 3 conversation."""


import dagster as dg
import pandas as pd
from pydantic import Field

from resources.gemma_checkpoints import GemmaCheckpoints

_CHAT_CHECKS = {
    "matches_gemma3_chat_template": "Rendering equals tokenizer.apply_chat_template with Gemma 3's template on every row.",
    "single_bos_token": "The training form (text tokenized without added specials) has exactly one <bos>, first.",
    "no_system_turn": "No row contains a <start_of_turn>system turn (Gemma 3 has no system role).",
    "ends_with_end_of_turn": "Every example ends with <end_of_turn> and a newline.",
}


class ChatDatasetConfig(dg.Config):
    eval_fraction: float = Field(default=0.05, ge=0, lt=1, description="Share of rows held out for evaluation.")
    seed: int = Field(default=42, description="Seed of the deterministic train/eval split.")


@dg.asset(
    group_name="data",
    kinds={"pandas", "huggingface"},
    owners=["team:ml-platform"],
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(name, asset="gemma_chat_dataset", blocking=True, description=text)
        for name, text in _CHAT_CHECKS.items()
    ],
)
def gemma_chat_dataset(
    context: dg.AssetExecutionContext,
    config: ChatDatasetConfig,
    gemma_checkpoints: GemmaCheckpoints,
    clean_instructions: pd.DataFrame,
):
    """Conversations in Gemma 3's chat format with a deterministic train/eval split.

    Columns: `messages` (user/assistant turns for training; the system text is folded into the
    user turn because Gemma 3 has no system role), `text` (the exact rendered string, starting
    with `<bos>`), `split` and `num_tokens` (Gemma 3 tokens of the training form).
    """
    from tr_gemma.chat_dataset import build_chat_frame, verify_chat_frame
    from tr_gemma.chat_format import gemma3_chat_template

    chat = build_chat_frame(clean_instructions, config.eval_fraction, config.seed)
    tokenizer = gemma_checkpoints.load_tokenizer()
    verification = verify_chat_frame(chat, clean_instructions, tokenizer, gemma3_chat_template())
    chat["num_tokens"] = verification.token_counts

    split_sizes = chat["split"].value_counts().to_dict()
    tokens = chat["num_tokens"]
    yield dg.Output(
        chat,
        metadata={
            "num_rows": len(chat),
            "train_rows": int(split_sizes.get("train", 0)),
            "eval_rows": int(split_sizes.get("eval", 0)),
            "total_tokens": int(tokens.sum()),
            "tokens_per_example_p50": float(tokens.quantile(0.5)),
            "tokens_per_example_max": int(tokens.max()),
            "examples": dg.MetadataValue.md(_examples_markdown(chat)),
        },
    )
    failures = {
        "matches_gemma3_chat_template": verification.template_mismatch,
        "single_bos_token": verification.bos_count_not_one,
        "no_system_turn": verification.system_turn,
        "ends_with_end_of_turn": verification.bad_ending,
    }
    for name, bad_rows in failures.items():
        yield dg.AssetCheckResult(
            check_name=name,
            passed=not bad_rows,
            metadata={"failing_rows": len(bad_rows), "first_failing_row_ids": str(bad_rows[:10])},
        )


def _examples_markdown(chat: pd.DataFrame) -> str:
    """Three rendered examples, preferring ones with a system prompt or an input."""
    with_system = chat[chat["text"].str.contains("\n\n", regex=False)]
    picks = pd.concat([with_system.head(2), chat.head(3)]).drop_duplicates("row_id").head(3)
    blocks = [f"**row {row.row_id}** ({row.split})\n\n```text\n{row.text}\n```" for row in picks.itertuples()]
    return "\n\n".join(blocks)
