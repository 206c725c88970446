"""Building the Gemma 3 chat data set from clean instructions, and verifying it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tr_gemma.chat_format import (
    BOS,
    END_OF_TURN,
    assign_splits,
    render,
    to_messages,
    to_template_messages,
)

CHAT_COLUMNS = ("row_id", "split", "messages", "text", "num_tokens")


def build_chat_frame(clean: pd.DataFrame, eval_fraction: float, seed: int) -> pd.DataFrame:
    """One conversation per clean row: `messages` for training, `text` for audit and analysis."""
    rows = clean[["system", "instruction", "input", "output"]].itertuples(index=False, name=None)
    messages = [to_messages(*row) for row in rows]
    texts = [render(conversation) for conversation in messages]
    return pd.DataFrame(
        {
            "row_id": clean["row_id"].to_numpy(),
            "split": assign_splits(texts, eval_fraction, seed),
            "messages": messages,
            "text": texts,
        }
    )


def encode_without_specials(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of many texts; the Rust backend's batch call skips Python-side padding/masks."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        return [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


@dataclass
class ChatVerification:
    """Row ids failing each Gemma 3 format rule (empty lists mean the data set is sound)."""

    template_mismatch: list[int]
    bos_count_not_one: list[int]
    system_turn: list[int]
    bad_ending: list[int]
    token_counts: list[int]


def verify_chat_frame(chat: pd.DataFrame, clean: pd.DataFrame, tokenizer, template: str) -> ChatVerification:
    """Compare with the tokenizer's own chat template and count BOS tokens of the training form."""
    row_ids = chat["row_id"].tolist()
    conversations = [
        to_template_messages(*row)
        for row in clean[["system", "instruction", "input", "output"]].itertuples(index=False, name=None)
    ]
    reference = tokenizer.apply_chat_template(conversations, chat_template=template, tokenize=False)
    texts = chat["text"].tolist()
    mismatch = [rid for rid, ours, theirs in zip(row_ids, texts, reference) if ours != theirs]

    # The training form: rendered text tokenized without adding special tokens.
    encoded = encode_without_specials(tokenizer, texts)
    bos_id = tokenizer.convert_tokens_to_ids(BOS)
    bos_bad = [
        rid for rid, ids in zip(row_ids, encoded) if ids.count(bos_id) != 1 or ids[0] != bos_id
    ]
    system_turn = [rid for rid, text in zip(row_ids, texts) if "<start_of_turn>system" in text]
    bad_ending = [rid for rid, text in zip(row_ids, texts) if not text.endswith(f"{END_OF_TURN}\n")]
    return ChatVerification(
        template_mismatch=mismatch,
        bos_count_not_one=bos_bad,
        system_turn=system_turn,
        bad_ending=bad_ending,
        token_counts=[len(ids) for ids in encoded],
    )
