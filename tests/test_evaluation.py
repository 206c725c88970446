"""TR-MMLU evaluation: prompts, schemas, BOS, equality with a direct lm-eval call, the gate and
the contamination guard."""

import json

import dagster as dg
import pandas as pd
import pytest

from tests.conftest import write_jsonl
from tr_gemma.errors import DataFileError
from tr_gemma.evaluation.contamination import find_leaks
from tr_gemma.evaluation.evaluate import EvalSettings, wilson_interval
from tr_gemma.evaluation.questions import canonical_questions, read_question_file, split_dev_from_test
from tr_gemma.evaluation.lm_eval_task import native_rows
from tr_gemma.evaluation.tasks_utils_loader import (
    doc_to_choice,
    doc_to_text,
    turkishmmlu_doc_to_choice,
    turkishmmlu_doc_to_target,
    turkishmmlu_doc_to_text,
)

FOUR = {"bolum": "Coğrafya", "soru": "Türkiye'nin başkenti neresidir?",
        "secenekler": ["İstanbul", "Ankara", "İzmir", "Bursa"], "cevap": 1}
FIVE = {"bolum": "Matematik", "soru": "2 + 2 kaçtır?", "secenekler": ["1", "2", "3", "4", "5"], "cevap": 3}


EXPECTED = "Soru: Türkiye'nin başkenti neresidir?\nA. İstanbul\nB. Ankara\nC. İzmir\nD. Bursa\nCevap:"


def test_exact_prompt_for_a_known_question_in_both_schemas():
    assert doc_to_text(FOUR) == EXPECTED
    turkish = {"question": FOUR["soru"], "choices": FOUR["secenekler"], "answer": "B"}
    assert turkishmmlu_doc_to_text(turkish) == EXPECTED and turkishmmlu_doc_to_target(turkish) == 1


def test_choices_are_cut_to_the_option_count():
    assert [doc_to_choice(d) for d in (FOUR, FIVE)] == [["A", "B", "C", "D"], ["A", "B", "C", "D", "E"]]
    assert doc_to_text(FIVE).endswith("D. 4\nE. 5\nCevap:")
    assert turkishmmlu_doc_to_choice({"choices": ["a", "b", "c", "d"]}) == ["A", "B", "C", "D"]


def test_canonical_rows_round_trip_to_each_schema():
    frame = canonical_questions(pd.DataFrame([FOUR, FIVE]), "test", "test")
    assert native_rows(frame, "tr_mmlu").to_dict("records")[0] == FOUR
    letters = native_rows(frame, "turkishmmlu")["answer"].tolist()
    assert letters == ["B", "D"]


def test_answer_mapping_of_both_schemas():
    tr_mmlu = canonical_questions(pd.DataFrame([FOUR, {**FIVE, "secenekler": json.dumps(FIVE["secenekler"])}]), "t", "test")
    assert tr_mmlu["answer"].tolist() == [1, 3] and tr_mmlu["choices"].iloc[1] == ["1", "2", "3", "4", "5"]
    turkish = canonical_questions(pd.DataFrame([
        {"question": "Hangisi asal?", "choices": ["4", "6", "7", "8", "9"], "answer": "C", "subject": "Matematik"},
        {"question": "Başkent?", "choices": ["a", "b", "c", "d", "e"], "answer": "a"},
    ]), "t", "test", section="Coğrafya")
    assert turkish["answer"].tolist() == [2, 0]
    assert turkish["section"].tolist() == ["Matematik", "Coğrafya"]


@pytest.mark.parametrize(
    "row,problem",
    [
        ({**FOUR, "cevap": 4}, "answer index 4 outside the 4 options"),
        ({**FOUR, "secenekler": ["a", "b", "c"]}, "expected 4 or 5 non-empty options"),
        ({**FOUR, "cevap": "B"}, "is not an integer index"),
    ],
)
def test_bad_questions_name_the_file_and_row(tmp_path, row, problem):
    path = write_jsonl(tmp_path / "sorular.jsonl", [FOUR, row])
    with pytest.raises(DataFileError, match=rf"sorular\.jsonl, row 2.*{problem}"):
        read_question_file(path)


def test_unknown_schema_is_named():
    with pytest.raises(Exception, match="unknown question schema"):
        canonical_questions(pd.DataFrame([{"q": "x"}]), "t", "test")


def test_embedded_sample_is_balanced_and_varied():
    from tr_gemma.embedded_data import DATA_DIR

    questions = read_question_file(DATA_DIR / "tr_mmlu_sample.jsonl")
    assert len(questions) >= 120 and questions["section"].nunique() >= 8
    sizes = questions["choices"].map(len)
    assert set(sizes) == {4, 5}
    for count in (4, 5):
        positions = questions[sizes == count]["answer"].value_counts()
        assert positions.max() - positions.min() <= 2, positions.to_dict()


def test_few_shot_examples_never_include_the_scored_question():
    frame = split_dev_from_test(canonical_questions(pd.DataFrame([FOUR, FIVE, {**FOUR, "soru": "Başka?"}]), "t", "test"))
    dev, test = frame[frame.split == "dev"], frame[frame.split == "test"]
    assert set(dev["question"]).isdisjoint(set(test["question"]))


def test_wilson_interval():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)


@pytest.fixture(scope="module")
def small_questions():
    from tr_gemma.embedded_data import DATA_DIR

    test = read_question_file(DATA_DIR / "tr_mmlu_sample.jsonl").groupby("section").head(2)
    dev = read_question_file(DATA_DIR / "tr_mmlu_sample_dev.jsonl", "dev")
    return pd.concat([test, dev], ignore_index=True)


def test_exactly_one_bos_per_request(tiny_model_dir, small_questions):
    from transformers import AutoTokenizer

    from tr_gemma.evaluation.evaluate import bos_count, lm_eval_model, load_model

    settings = EvalSettings(load_in_4bit=False, batch_size="4")
    lm = lm_eval_model(load_model(tiny_model_dir, None, settings), AutoTokenizer.from_pretrained(tiny_model_dir), settings)
    assert bos_count(lm, small_questions) == 1


@pytest.mark.parametrize("schema", ["tr_mmlu", "turkishmmlu"])
def test_score_equals_a_direct_lm_eval_call(tiny_model_dir, small_questions, tmp_path, schema):
    """Our path (model instance handed to HFLM) == lm-eval's own `hf` model loading, same task,
    for the task of each benchmark schema."""
    small_questions = small_questions.assign(schema=schema)
    import lm_eval
    from lm_eval.tasks import TaskManager

    from tr_gemma.evaluation.evaluate import evaluate_base_and_adapter
    from tr_gemma.evaluation.lm_eval_task import write_task

    ours, _, info = evaluate_base_and_adapter(tiny_model_dir, None, small_questions,
                                               EvalSettings(load_in_4bit=False, batch_size="4"))
    include, task = write_task(small_questions, tmp_path / "task")
    direct = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model_dir},add_bos_token=True,dtype=float32",
        tasks=[task], task_manager=TaskManager(include_path=str(include), include_defaults=False),
        batch_size=4, bootstrap_iters=0, device="cpu",
    )
    assert ours.accuracy == direct["results"][task]["acc,none"]
    assert ours.accuracy_norm == direct["results"][task]["acc_norm,none"]
    assert ours.n == len(small_questions[small_questions.split == "test"]) and info["task_hash"]


def test_contamination_guard_finds_a_planted_leak():
    questions = ["Osmanlı Devleti'nin kurucusu olan ve Söğüt çevresinde bir beylik kuran kişi kimdir? Osman Bey Orhan Bey"]
    training = [
        (0, "Bugün hava çok güzel, parkta yürüyüş yapalım."),
        (1, "SORU: osmanlı devleti'nin KURUCUSU olan ve Söğüt çevresinde bir beylik kuran kişi kimdir? Cevap: Osman Bey."),
    ]
    leaks = find_leaks(training, questions, n=8)
    assert [leak.row_id for leak in leaks] == [1]
    assert leaks[0].ngram == "osmanlı devleti'nin kurucusu olan ve söğüt çevresinde bir"


def test_contamination_check_fails_listing_the_rows(resources, gemma_tokenizer_dir, tmp_path):
    from assets.chat_dataset import gemma_chat_dataset
    from assets.evaluation import no_benchmark_contamination, tr_mmlu_questions
    from assets.instructions import clean_instructions, raw_instructions
    from tests.conftest import instruction_row

    leaked = "Malazgirt Savaşı hangi yıl gerçekleşmiştir ve Anadolu'nun kapılarını Türklere açan savaş hangisidir?"
    rows = [instruction_row(instruction=leaked, output="1071 yılında."), instruction_row(output="Temiz bir örnek.")]
    question = {"bolum": "Tarih", "soru": leaked, "secenekler": ["1048", "1071", "1176", "1243"], "cevap": 1}
    data = write_jsonl(tmp_path / "egitim.jsonl", rows)
    questions = write_jsonl(tmp_path / "sorular.jsonl", [question, {**FOUR}, {**FIVE}])
    result = dg.materialize(
        [raw_instructions, clean_instructions, gemma_chat_dataset, tr_mmlu_questions, no_benchmark_contamination],
        resources=resources, raise_on_error=False,
        run_config={"ops": {
            "raw_instructions": {"config": {"source": "path", "path": str(data)}},
            "tr_mmlu_questions": {"config": {"source": "path", "path": str(questions)}},
        }},
    )
    evaluation = next(e.asset_check_evaluation_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION"
                      and e.asset_check_evaluation_data.check_name == "no_benchmark_contamination")
    assert not evaluation.passed and evaluation.metadata["leaking_rows"].value == 1
    assert "| 0 |" in evaluation.metadata["offending_rows"].value
