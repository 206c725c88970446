"""Each cleaning rule, on rows written to break exactly that rule."""

import unicodedata

import pandas as pd
import pytest

from tests.conftest import DATA_DIR, instruction_row, read_jsonl
from tr_gemma.cleaning import REJECT_REASONS, CleaningRules, clean_instructions
from tr_gemma.text_normalization import invalid_unicode_reason, looks_mojibake, turkish_lower


def run(rows, **rules):
    # object dtype: pandas' default Arrow strings cannot even hold a lone surrogate
    return clean_instructions(pd.DataFrame(rows, dtype=object), CleaningRules(**rules))


def reason_of(row, **rules):
    result = run([row], **rules)
    return result.rejects["reason"].tolist()[0] if len(result.rejects) else None


def test_turkish_columns_are_selected_never_english():
    result = run([instruction_row(instruction="Türkçe talimat", output="Türkçe cevap")])
    row = result.clean.iloc[0]
    assert (row["instruction"], row["output"]) == ("Türkçe talimat", "Türkçe cevap")
    assert "English" not in " ".join(result.clean.astype(str).iloc[0])


def test_text_is_nfc_normalised_and_trimmed():
    decomposed = unicodedata.normalize("NFD", "  Şişli'de güzel bir gün  ")
    result = run([instruction_row(output=decomposed)])
    assert result.clean.iloc[0]["output"] == "Şişli'de güzel bir gün"


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"output": ""}, "empty_field"),
        ({"instruction": "  \n\t "}, "empty_field"),
        ({"output": None}, "null_field"),
        ({"output": "GÃ¼zel bir gÃ¼n"}, "mojibake"),
        ({"instruction": "KarÅŸÄ±laÅŸtÄ±r"}, "mojibake"),
        ({"output": "bozuk \ufffd metin"}, "invalid_unicode"),
        ({"output": "kontrol \x07 karakteri"}, "invalid_unicode"),
        ({"output": "yarım \ud800 vekil"}, "invalid_unicode"),
        ({"output": "Cevap <end_of_turn> burada"}, "control_token"),
        ({"output": "Bir yapay zeka dil modeli olarak buna cevap veremem."}, "ai_identity"),
        ({"output": "BİR YAPAY ZEKA DİL MODELİ OLARAK söyleyemem."}, "ai_identity"),
    ],
)
def test_each_rule_rejects_its_row_with_a_reason(fields, reason):
    assert reason_of(instruction_row(**fields)) == reason


def test_input_and_system_may_be_null_or_empty():
    result = run([instruction_row(input=None, system=None)])
    assert len(result.clean) == 1 and result.clean.iloc[0]["input"] == ""


def test_ai_identity_rule_can_be_switched_off():
    row = instruction_row(output="Bir yapay zeka dil modeli olarak kısaca anlatayım: su kaynar.")
    assert reason_of(row, drop_ai_identity=False) is None


def test_over_long_fields_are_rejected():
    assert reason_of(instruction_row(output="a" * 101), max_chars_per_field=100) == "too_long"


def test_exact_duplicates_after_normalisation_keep_the_first():
    first = instruction_row(output="Çiçek açtı.")
    nfd_copy = instruction_row(output=unicodedata.normalize("NFD", "Çiçek açtı.") + "  ")
    result = run([first, nfd_copy])
    assert result.clean["row_id"].tolist() == [0]
    assert result.rejects.iloc[0]["reason"] == "duplicate"
    assert result.rejects.iloc[0]["detail"] == "same text as row 0"


def test_counts_cover_every_reason():
    result = run([instruction_row(), instruction_row(output="")])
    assert set(result.counts) == set(REJECT_REASONS)
    assert result.counts["empty_field"] == 1 and sum(result.counts.values()) == 1


def test_shipped_bad_rows_are_each_rejected_for_their_defect():
    rows = read_jsonl(DATA_DIR / "bad_instructions.jsonl")
    expected = {
        "empty_output": "empty_field",
        "whitespace_instruction": "empty_field",
        "empty_instruction": "empty_field",
        "mojibake": "mojibake",
        "ai_identity": "ai_identity",
        "duplicate_b": "duplicate",
        "nfd_duplicate": "duplicate",
    }
    result = run([{k: v for k, v in r.items() if k != "defect"} for r in rows])
    defects = [r["defect"] for r in rows]
    rejected = {defects[rid]: reason for rid, reason in zip(result.rejects["row_id"], result.rejects["reason"])}
    assert rejected == expected
    assert [defects[rid] for rid in result.clean["row_id"]] == ["duplicate_a"]


def test_turkish_lower_handles_dotted_and_dotless_i():
    assert turkish_lower("IŞIK İZMİR") == "ışık izmir"
    assert "İ".lower() != "i"  # why the helper exists


def test_detectors_leave_real_turkish_alone():
    text = "Öğretmen, çocukların ışığı açık bıraktığını söyledi: 'Şimdi İzmir'e gidiyoruz!' — 5 °C, €10."
    assert not looks_mojibake(text) and invalid_unicode_reason(text) is None
