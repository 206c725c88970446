"""The fixed Turkish prompts answered by the base and the fine-tuned model (written for this project).

Each prompt is an instruction, optional input and optional system text, in the same fields as the
training data, so it is rendered exactly as training examples are (Gemma 3 has no system role:
the system text goes in front of the user turn).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplePrompt:
    id: str
    kind: str
    instruction: str
    input: str = ""
    system: str = ""
    reference: str = ""  # what a correct answer contains, for the reader (not scored)


SAMPLE_PROMPTS: tuple[SamplePrompt, ...] = (
    SamplePrompt(
        id="gunluk-soru", kind="everyday question",
        instruction="Kışın evde ısınma masrafını azaltmak için neler yapabilirim? Üç kısa öneri ver.",
    ),
    SamplePrompt(
        id="talimat", kind="instruction",
        instruction="Yarın doğum günü olan bir iş arkadaşıma kısa ve samimi bir kutlama mesajı yaz.",
    ),
    SamplePrompt(
        id="yeniden-yazma", kind="short rewrite",
        instruction="Aşağıdaki cümleyi daha kibar ve resmî bir dille yeniden yaz.",
        input="Yarınki toplantıya gelemiyorum, başka bir güne alalım.",
    ),
    SamplePrompt(
        id="matematik", kind="math word problem",
        instruction="Bir manav sabah 48 kilo elma getirdi. Öğlene kadar 17 kilo, öğleden sonra 19 kilo "
        "sattı. Akşam elinde kaç kilo elma kaldı? Adım adım çöz.",
        reference="48 - 17 - 19 = 12 kilo",
    ),
    SamplePrompt(
        id="sistem-talimati", kind="with a system instruction",
        system="Sen çocuklara bilim anlatan sabırlı bir öğretmensin. Cevaplarını kısa ve basit tut.",
        instruction="Gökkuşağı neden oluşur?",
        reference="Güneş ışığı yağmur damlalarında kırılıp renklerine ayrılır.",
    ),
    SamplePrompt(
        id="bilgi", kind="factual question",
        instruction="Türkiye'nin en uzun nehri hangisidir ve hangi denize dökülür?",
        reference="Kızılırmak; Karadeniz'e dökülür.",
    ),
)
