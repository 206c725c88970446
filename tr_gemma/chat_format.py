"""Gemma 3 chat format: conversations, rendered text and the deterministic train/eval split.

Gemma 3 has no system role: the system text goes in front of the first user turn, separated by a
blank line, and the assistant role is called `model`. The rendered form of one example is

    <bos><start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n{model}<end_of_turn>\n

Rendered text must be tokenized with ``add_special_tokens=False``: the text already starts with
``<bos>`` and the tokenizer would add a second one.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

BOS = "<bos>"
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"


def user_turn(system: str, instruction: str, input_text: str) -> str:
    """System text, instruction and input joined by blank lines, skipping empty parts."""
    parts = (system.strip(), instruction.strip(), input_text.strip())
    return "\n\n".join(part for part in parts if part)


def to_messages(system: str, instruction: str, input_text: str, output: str) -> list[dict]:
    """The training conversation: system already folded into the user turn (Gemma 3 style)."""
    return [
        {"role": "user", "content": user_turn(system, instruction, input_text)},
        {"role": "assistant", "content": output.strip()},
    ]


def to_template_messages(system: str, instruction: str, input_text: str, output: str) -> list[dict]:
    """The same conversation with a separate system message, as chat templates expect it."""
    messages = [] if not system.strip() else [{"role": "system", "content": system.strip()}]
    messages.append({"role": "user", "content": user_turn("", instruction, input_text)})
    messages.append({"role": "assistant", "content": output.strip()})
    return messages


def render(messages: list[dict]) -> str:
    """Render a user/assistant conversation exactly as Gemma 3's chat template does."""
    pieces = [BOS]
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise ValueError(
                f"message {index} has role '{message['role']}', expected '{expected}': Gemma 3 "
                "conversations alternate user/assistant and have no system turn"
            )
        role = "model" if message["role"] == "assistant" else "user"
        pieces.append(f"{START_OF_TURN}{role}\n{message['content'].strip()}{END_OF_TURN}\n")
    return "".join(pieces)


def gemma3_chat_template() -> str:
    """Gemma 3's own chat template as shipped by the installed trl (read, not copied)."""
    return _trl_template_path("gemma3.jinja").read_text(encoding="utf-8")


def _trl_template_path(name: str) -> Path:
    # find_spec locates the package without importing trl (which would import torch).
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("trl is not installed; it ships Gemma 3's chat template")
    return Path(list(spec.submodule_search_locations)[0]) / "chat_templates" / name


def assign_splits(keys: list[str], eval_fraction: float, seed: int) -> list[str]:
    """'train' or 'eval' per row: the rows with the smallest seeded hashes go to eval.

    Hash ranking (not a shuffled position) keeps a row's split stable when other rows are added
    or removed, so the held-out set does not leak into training between data versions.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    scores = [hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest() for key in keys]
    n_eval = round(len(keys) * eval_fraction)
    if eval_fraction > 0 and n_eval == 0 and len(keys) > 1:
        n_eval = 1
    eval_rows = set(sorted(range(len(keys)), key=scores.__getitem__)[:n_eval])
    return ["eval" if i in eval_rows else "train" for i in range(len(keys))]
