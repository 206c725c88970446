"""Gemma 3 rendering on hand-written conversations (no tokenizer needed)."""

import pytest

from tr_gemma.chat_format import assign_splits, render, to_messages, to_template_messages


def test_plain_instruction_renders_exact_gemma3_string():
    messages = to_messages("", "Türkiye'nin başkenti neresidir?", "", "Ankara.")
    assert render(messages) == (
        "<bos><start_of_turn>user\nTürkiye'nin başkenti neresidir?<end_of_turn>\n"
        "<start_of_turn>model\nAnkara.<end_of_turn>\n"
    )


def test_system_text_is_prepended_to_user_turn_with_blank_line():
    messages = to_messages("Kısa cevap ver.", "Bir renk söyle.", "", "Mavi.")
    assert messages[0] == {"role": "user", "content": "Kısa cevap ver.\n\nBir renk söyle."}
    text = render(messages)
    assert "<start_of_turn>system" not in text
    assert text.startswith("<bos><start_of_turn>user\nKısa cevap ver.\n\nBir renk söyle.<end_of_turn>\n")


def test_input_follows_instruction_and_empty_input_adds_nothing():
    with_input = to_messages("", "Özetle.", "Uzun bir metin.", "Kısa.")
    without_input = to_messages("", "Özetle.", "   ", "Kısa.")
    assert with_input[0]["content"] == "Özetle.\n\nUzun bir metin."
    assert without_input[0]["content"] == "Özetle."


def test_turkish_dotted_and_dotless_i_survive_unchanged():
    text = render(to_messages("", "İĞNE ile ıspanak", "", "Iğdır ve İzmir"))
    assert "İĞNE ile ıspanak" in text and "Iğdır ve İzmir" in text


def test_emoji_and_multi_paragraph_output_are_kept_and_trimmed():
    output = "  Birinci paragraf 🎉\n\nİkinci paragraf.\n\n- madde 1\n- madde 2\n\n"
    text = render(to_messages("", "Yaz.", "", output))
    assert text.endswith("<start_of_turn>model\nBirinci paragraf 🎉\n\nİkinci paragraf.\n\n- madde 1\n- madde 2<end_of_turn>\n")


def test_roles_must_alternate():
    with pytest.raises(ValueError, match="alternate"):
        render([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


def test_template_messages_keep_system_separate_for_the_template_to_fold():
    messages = to_template_messages("Sistem.", "Soru?", "Girdi", "Cevap")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"] == "Soru?\n\nGirdi"


def test_split_is_deterministic_exact_and_stable_when_rows_are_added():
    keys = [f"örnek {i}" for i in range(200)]
    first = assign_splits(keys, 0.1, seed=42)
    assert first == assign_splits(keys, 0.1, seed=42)
    assert first.count("eval") == 20
    assert first != assign_splits(keys, 0.1, seed=7)
    grown = assign_splits(keys + [f"yeni {i}" for i in range(5)], 0.1, seed=42)
    moved = sum(a != b for a, b in zip(first, grown))
    assert moved <= 2  # adding rows moves at most a boundary row or two, never reshuffles


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="eval_fraction"):
        assign_splits(["a"], 1.0, seed=1)
