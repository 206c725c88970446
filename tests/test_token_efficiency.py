"""Token-efficiency metrics on hand-counted Turkish text, word segmentation, and the asset."""

import json
from pathlib import Path

import dagster as dg
import pytest

from tr_gemma.token_efficiency import Corpus, Tokenizer, analyse, claim_verdict, length_table, parity, totals
from tr_gemma.token_metrics import packing_efficiency, words


@pytest.mark.parametrize(
    "text,expected",
    [
        ("İstanbul'da yağmur yağıyor.", ["İstanbul'da", "yağmur", "yağıyor"]),
        ("Türkiye’nin başkenti Ankara’dır.", ["Türkiye’nin", "başkenti", "Ankara’dır"]),
        ("e-posta ve COVID-19 aşısı", ["e-posta", "ve", "COVID-19", "aşısı"]),
        ("Fiyat 1.234,56 TL, indirim %15.", ["Fiyat", "1.234,56", "TL", "indirim", "15"]),
        ("3/4 oranında 2026 yılında", ["3", "4", "oranında", "2026", "yılında"]),
        ("Harika! 🎉🇹🇷 Çok güzel…", ["Harika", "Çok", "güzel"]),
        ("IŞIK ılık İĞNE iğne", ["IŞIK", "ılık", "İĞNE", "iğne"]),
        ("“Alıntı” — ‘tek’ tırnak", ["Alıntı", "tek", "tırnak"]),
        ("satır1\n\nsatır2\tsekme", ["satır1", "satır2", "sekme"]),
    ],
)
def test_words_suit_turkish(text, expected):
    assert words(text) == expected


def test_words_are_the_same_for_nfd_and_nfc_text():
    import unicodedata

    text = "Şişli'de öğrenciler çalışıyor"
    assert words(unicodedata.normalize("NFD", text)) == words(text)


def three_char_tokenizer() -> Tokenizer:
    """A tokenizer simple enough to count by hand: each run of letters cut every 3 characters,
    every other non-space character one token."""
    import re

    def encode(text: str) -> list[int]:
        pieces = []
        for match in re.finditer(r"[^\W\d_]+|\S", text):
            chunk = match.group()
            pieces += [chunk[i:i + 3] for i in range(0, len(chunk), 3)] if chunk.isalpha() else [chunk]
        return [hash(p) % 1000 for p in pieces]

    return Tokenizer("three", "Three-char", 1000, lambda texts: [encode(t) for t in texts], True, "test")


def test_metrics_on_hand_counted_sentences():
    # "Ali okula gitti." -> Ali | oku la | git ti | .  = 6 tokens, 3 words
    # "Ev büyük."        -> Ev | büy ük | .           = 4 tokens, 2 words
    corpus = Corpus("hand", {("output", "tr"): ["Ali okula gitti.", "Ev büyük."], ("output", "en"): ["Ali went."]})
    analysis = analyse([corpus], [three_char_tokenizer()])
    table = analysis.table
    row = table[(table["language"] == "tr")].iloc[0]
    assert (row["words"], row["tokens"]) == (5, 10)
    assert row["fertility"] == pytest.approx(2.0)
    assert row["continued_word_share"] == pytest.approx(3 / 5)  # okula, gitti, büyük need 2 tokens
    assert row["chars_per_token"] == pytest.approx((16 + 9) / 10)
    assert row["bytes_per_token"] == pytest.approx((16 + 11) / 10)  # büyük: two "ü", 2 UTF-8 bytes each
    # English: "Ali went." -> Ali | wen t | . = 4 tokens; parity = 10 / 4
    assert parity(table, "hand").set_index("field").loc["all", "parity"] == pytest.approx(2.5)
    lengths = analysis.example_lengths("hand", "tr").iloc[0]
    assert (lengths["p50"], lengths["max"]) == (5.0, 6.0)  # examples of 6 and 4 tokens


def test_lengths_and_packing():
    assert packing_efficiency([3, 3, 2, 2], 5) == 1.0
    assert packing_efficiency([4, 4], 5) == pytest.approx(0.8)
    assert packing_efficiency([10], 4) == 1.0  # truncated to fit
    table = length_table([100, 5000, 300], {"1b": 4096, "27b": 8192}).set_index("size")
    assert table.loc["1b", "longer_than_max"] == 1 and table.loc["27b", "longer_than_max"] == 0


def test_verdict_on_the_published_claim():
    import pandas as pd

    measured = pd.DataFrame({"tokenizer": ["gemma3", "llama3"], "fertility": [2.40, 2.45]})
    assert claim_verdict(measured, 100).startswith("DIRECTION SUPPORTED, NUMBERS NOT")
    measured["fertility"] = [1.96, 2.20]
    assert claim_verdict(measured, 100).startswith("SUPPORTED")
    measured["fertility"] = [2.5, 2.3]
    assert claim_verdict(measured, 100).startswith("NOT SUPPORTED")


def test_token_efficiency_asset_on_the_embedded_data(resources, tmp_path, gemma_tokenizer_dir):
    from assets.chat_dataset import gemma_chat_dataset
    from assets.instructions import clean_instructions, raw_instructions
    from assets.token_efficiency import token_efficiency

    corpus = tmp_path / "benim_metnim.jsonl"
    corpus.write_text(json.dumps({"metin": "Bugün hava çok güzel, İzmir'e gidiyoruz."}, ensure_ascii=False) + "\n")
    result = dg.materialize(
        [raw_instructions, clean_instructions, gemma_chat_dataset, token_efficiency],
        resources=resources,
        run_config={"ops": {"token_efficiency": {"config": {
            "extra_corpus_paths": [str(corpus)], "text_field": "metin", "hub_tokenizers": ["ytu-ce-cosmos/turkish-gpt2"],
        }}}},
    )
    meta = result.asset_materializations_for_node("token_efficiency")[0].metadata
    for name in ("gemma3", "llama3", "o200k_base", "cl100k_base", "qwen3"):
        assert 1.0 < meta[f"fertility_tr_{name}"].value < 5.0
    assert "Gemma 3" in meta["verdict_on_claim"].value and "Llama 3" in meta["verdict_on_claim"].value
    assert meta["fertility_chart"].value.startswith("![fertility by tokenizer](data:image/png;base64,")
    assert "ytu-ce-cosmos/turkish-gpt2" in meta["unavailable_tokenizers"].value  # no Hub here: reported
    table = __import__("pandas").read_parquet(meta["table_path"].value)
    assert str(corpus) in set(table["corpus"])
    assert set(table["language"]) == {"tr", "en"}
    assert "qwen3" in meta["content_tokens_per_example"].value
    assert Path(meta["chart_path"].value).read_bytes()[:4] == b"\x89PNG"
