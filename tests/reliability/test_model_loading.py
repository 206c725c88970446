"""The model the trainer and the evaluator load is the one the adapter belongs to.

A multimodal (4B+) folder loaded for training would give Gemma3ForConditionalGeneration: LoRA
could land on the vision tower and the adapter's key prefixes would not match the text model at
evaluation, where peft only warns and the base model is silently scored.
"""

import warnings

import pytest
import torch

from tests.reliability.conftest import tiny_job
from tests.tiny_gemma import save_tiny_multimodal


def test_trainer_refuses_a_multimodal_checkpoint_before_training(tmp_path, chat_parquet):
    from tr_gemma.training.sft import TrainingPreflightError, load_quantized_model

    job = tiny_job(tmp_path, save_tiny_multimodal(tmp_path / "gemma-4b-like"), chat_parquet)
    with pytest.raises(TrainingPreflightError, match="loads as Gemma3ForConditionalGeneration; the trainer needs "
                                                     "the text-only Gemma3ForCausalLM"):
        load_quantized_model(job, "cpu")


def test_evaluation_scores_the_adapter_it_was_given(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tr_gemma.evaluation.evaluate import EvalSettings, load_model
    from tr_gemma.training.recipe import LORA_TARGETS

    torch.manual_seed(0)
    trained = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                             LoraConfig(r=4, target_modules=list(LORA_TARGETS), init_lora_weights=False, task_type="CAUSAL_LM"))
    trained.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    ids = torch.tensor([[2, 105, 10, 11, 12, 106]])
    settings = EvalSettings(load_in_4bit=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluated = load_model(tiny_model_dir, tmp_path / "adapter", settings)
    assert not [w for w in caught if "missing adapter keys" in str(w.message).lower()]
    with torch.no_grad():
        expected = trained.eval()(input_ids=ids).logits
        adapted = evaluated(input_ids=ids).logits
        base = load_model(tiny_model_dir, None, settings)(input_ids=ids).logits
    torch.testing.assert_close(adapted, expected)  # the trained weights, not fresh LoRA modules
    assert not torch.allclose(adapted, base)
