"""Prompt functions of the shipped tasks (loaded by lm-eval from the include path).

Two tasks, one per benchmark schema, with the same prompt:
`tr_mmlu` reads TR-MMLU rows (bolum, soru, secenekler, cevap 0-based);
`turkishmmlu_local` reads TurkishMMLU rows (subject, question, choices, answer letter).
"""

LETTERS = "ABCDE"


def prompt(question: str, choices: list) -> str:
    """`Soru: ...` then one lettered line per option, then `Cevap:`."""
    options = "\n".join(f"{LETTERS[i]}. {choice.strip()}" for i, choice in enumerate(choices))
    return f"Soru: {question.strip()}\n{options}\nCevap:"


def doc_to_text(doc: dict) -> str:
    return prompt(doc["soru"], doc["secenekler"])


def doc_to_choice(doc: dict) -> list[str]:
    """Only as many letters as the question has options (4 or 5)."""
    return list(LETTERS[: len(doc["secenekler"])])


def turkishmmlu_doc_to_text(doc: dict) -> str:
    return prompt(doc["question"], doc["choices"])


def turkishmmlu_doc_to_choice(doc: dict) -> list[str]:
    return list(LETTERS[: len(doc["choices"])])


def turkishmmlu_doc_to_target(doc: dict) -> int:
    return LETTERS.index(doc["answer"].strip().upper())
