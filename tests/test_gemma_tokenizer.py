"""Equality with Gemma 3's own chat template and the BOS count, with the real tokenizer."""

import pytest

from tr_gemma.chat_format import gemma3_chat_template, render, to_messages, to_template_messages

HAND_WRITTEN = [
    ("", "Türkiye'nin en uzun nehri hangisidir?", "", "Kızılırmak'tır."),
    ("Sen yardımsever bir öğretmensin.", "Açıkla.", "Işık neden kırılır?", "Ortam değişince hızı değişir."),
    ("", "Bir kutlama mesajı yaz.", "", "Tebrikler! 🎉🎂\n\nNice mutlu yıllara."),
    ("", "İĞDIR ve ılık", "", "İyi günler, ıhlamur çayı."),
    ("  Boşluklu sistem  ", "  Talimat  ", "  Girdi  ", "  Çıktı  \n"),
]


@pytest.mark.parametrize("system,instruction,input_text,output", HAND_WRITTEN)
def test_rendering_equals_apply_chat_template(gemma_tokenizer, system, instruction, input_text, output):
    ours = render(to_messages(system.strip(), instruction.strip(), input_text.strip(), output.strip()))
    theirs = gemma_tokenizer.apply_chat_template(
        to_template_messages(system.strip(), instruction.strip(), input_text.strip(), output.strip()),
        chat_template=gemma3_chat_template(),
        tokenize=False,
    )
    assert ours == theirs


def test_tokenizer_is_the_real_gemma3_vocabulary(gemma_tokenizer):
    assert len(gemma_tokenizer) == 262_144
    ids = gemma_tokenizer.convert_tokens_to_ids(["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"])
    assert ids == [0, 1, 2, 105, 106]


def test_training_form_has_exactly_one_bos_and_the_default_call_would_add_a_second(gemma_tokenizer):
    text = render(to_messages("", "Merhaba de.", "", "Merhaba!"))
    training_form = gemma_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert training_form.count(2) == 1 and training_form[0] == 2
    assert training_form[-2:] == [106, gemma_tokenizer.convert_tokens_to_ids("\n")]
    # The pitfall this project guards against: render-then-tokenize with defaults doubles BOS.
    assert gemma_tokenizer(text)["input_ids"][:2] == [2, 2]
