"""Greedy answers to the sample prompts, from one model folder, stopping on the stop tokens."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tr_gemma.chat_format import START_OF_TURN, render, user_turn
from tr_gemma.handoff.sample_prompts import SamplePrompt


@dataclass
class Answer:
    prompt_id: str
    text: str
    new_tokens: int  # generated tokens, the stop token included
    stop: str  # the stop token that ended the answer, or "max_new_tokens"
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def prompt_messages(prompt: SamplePrompt) -> list[dict]:
    """The conversation as the training data has it: system text folded into the user turn."""
    return [{"role": "user", "content": user_turn(prompt.system, prompt.instruction, prompt.input)}]


def template_messages(prompt: SamplePrompt) -> list[dict]:
    """The same conversation with a separate system message, as chat templates take it."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system.strip() else []
    return messages + [{"role": "user", "content": user_turn("", prompt.instruction, prompt.input)}]


def prompt_text(prompt: SamplePrompt) -> str:
    """`<bos><start_of_turn>user\\n...<end_of_turn>\\n<start_of_turn>model\\n`: what the model continues."""
    return render(prompt_messages(prompt)) + f"{START_OF_TURN}model\n"


def read_stop_ids(model_dir: Path) -> list[int]:
    """The stop ids of a saved generation config (a single id becomes a list)."""
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    return [int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])]


def load_for_generation(model_dir: Path, device: str, cpu_threads: int = 1):
    """bf16 weights. On the CPU they run in float32 with eager attention (bf16 matmuls and SDPA
    are several times slower there; float32 holds the bf16 values exactly) on `cpu_threads`
    threads: decoding one sequence is a chain of tiny operations, and on a busy machine every
    extra thread adds a hand-off wait (measured on 2 shared cores: 0.12 s per token on 1 thread,
    0.85 s on 2)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "cuda":
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to("cuda")
    else:
        torch.set_num_threads(max(1, cpu_threads))
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


def generate_answers(
    model_dir: Path,
    prompts: Sequence[SamplePrompt],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    label: str = "model",
    cpu_threads: int = 1,
) -> list[Answer]:
    """Load the model in `model_dir` and answer `prompts` (see `answer_prompts`)."""
    import torch

    threads = torch.get_num_threads()
    try:
        model, tokenizer = load_for_generation(Path(model_dir), device, cpu_threads)
        return answer_prompts(model, tokenizer, prompts, stop_ids, max_new_tokens, log, label)
    finally:
        torch.set_num_threads(threads)


def answer_prompts(
    model,
    tokenizer,
    prompts: Sequence[SamplePrompt],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    log: Callable[[str], None] = print,
    label: str = "model",
) -> list[Answer]:
    """Greedy decoding, one prompt at a time (no padding, so an answer does not depend on the
    other prompts), stopping at the first of `stop_ids` or after `max_new_tokens`."""
    import torch
    from transformers import GenerationConfig

    settings = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=list(stop_ids),
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    names = {i: tokenizer.convert_ids_to_tokens(i) for i in stop_ids}
    answers = []
    for prompt in prompts:
        started = time.perf_counter()
        encoded = tokenizer(prompt_text(prompt), return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            output = model.generate(**encoded, generation_config=settings)
        new = output[0, encoded["input_ids"].shape[1]:].tolist()
        end = next((i for i, token in enumerate(new) if token in names), None)
        text = tokenizer.decode(new if end is None else new[:end], skip_special_tokens=True).strip()
        answer = Answer(prompt_id=prompt.id, text=text, new_tokens=len(new) if end is None else end + 1,
                        stop="max_new_tokens" if end is None else names[new[end]],
                        seconds=time.perf_counter() - started)
        log(f"{label} [{prompt.id}] {answer.new_tokens} tokens in {answer.seconds:.1f} s, stop: {answer.stop}")
        answers.append(answer)
    return answers


def side_by_side_markdown(prompts: Sequence[SamplePrompt], base: Sequence[Answer], tuned: Sequence[Answer]) -> str:
    """One table row per prompt: the prompt, the base model's answer, the fine-tuned model's answer."""
    lines = ["| # | prompt | base model | fine-tuned |", "|---|---|---|---|"]
    for number, (prompt, b, t) in enumerate(zip(prompts, base, tuned), start=1):
        asked = user_turn("", prompt.instruction, prompt.input)
        if prompt.system:
            asked = f"_sistem:_ {prompt.system} ⏎ {asked}"
        if prompt.reference:
            asked += f" ⏎ _beklenen:_ {prompt.reference}"
        lines.append(f"| {number} ({prompt.kind}) | {_cell(asked)} | {_cell(b.text, b.stop)} | {_cell(t.text, t.stop)} |")
    return "\n".join(lines)


def _cell(text: str, stop: str = "") -> str:
    text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "").strip()
    text = " ⏎ ".join(line for line in text.split("\n") if line.strip()) or "_(empty)_"
    if stop == "max_new_tokens":
        text += " _[…cut at max_new_tokens]_"
    return text
