"""Prompt functions of the shipped TR-MMLU task (loaded by lm-eval from the include path)."""

LETTERS = "ABCDE"


def doc_to_text(doc: dict) -> str:
    """`Soru: ...` then one lettered line per option, then `Cevap:`."""
    options = "\n".join(f"{LETTERS[i]}. {choice.strip()}" for i, choice in enumerate(doc["choices"]))
    return f"Soru: {doc['question'].strip()}\n{options}\nCevap:"


def doc_to_choice(doc: dict) -> list[str]:
    """Only as many letters as the question has options (4 or 5)."""
    return list(LETTERS[: len(doc["choices"])])
