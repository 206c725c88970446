"""The QLoRA trainer on tiny random Gemma 3 models with the real tokenizer (CPU)."""

import json

import pytest
import torch

from tr_gemma.chat_format import to_messages
from tr_gemma.errors import PipelineInputError
from tr_gemma.training.callbacks import LossGuard, NonFiniteLossError
from tr_gemma.training.recipe import LORA_TARGETS, RECIPES_DIR, load_recipe
from tr_gemma.training.resume import JOB_FILE, prepare_checkpoint_dir
from tr_gemma.training.sft import TrainingJob, load_tokenizer, release_optimizer_registry, sft_config

# --- recipes -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["270m", "1b", "4b", "12b", "27b"])
def test_every_size_has_a_recipe_with_the_reference_defaults(size):
    recipe = load_recipe(size)
    assert (RECIPES_DIR / f"gemma-3-{size}.yaml").is_file()
    assert (recipe.lora.r, recipe.lora.lora_alpha, recipe.lora.lora_dropout) == (32, 64, 0.05)
    assert tuple(recipe.lora.target_modules) == LORA_TARGETS
    q = recipe.quantization
    assert (q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == ("nf4", True, "bfloat16")
    t = recipe.training
    assert (t.per_device_train_batch_size, t.gradient_accumulation_steps, t.learning_rate) == (2, 4, 2e-4)
    assert (t.max_length, t.packing, t.optim, t.gradient_checkpointing, t.bf16) == (4096, True, "paged_adamw_8bit", True, True)


def test_overrides_replace_only_the_named_values():
    recipe = load_recipe("1b", {"training": {"learning_rate": 1e-4}, "lora": {"r": 16}})
    assert recipe.training.learning_rate == 1e-4 and recipe.lora.r == 16
    assert recipe.lora.lora_alpha == 64 and recipe.training.max_length == 4096


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"training": {"learning_rate": -1}}, "training.learning_rate"),
        ({"lora": {"r": 0}}, "lora.r"),
        ({"training": {"fp16": True}}, "training.fp16"),
        ({"quantization": {"bnb_4bit_compute_dtype": "float16"}}, "quantization.bnb_4bit_compute_dtype"),
        ({"training": {"max_length": 40_000}}, "exceeds the 1b context length 32768"),
        ({"training": {"lerning_rate": 1e-4}}, "training.lerning_rate"),
        ({"lora": {"target_modules": ["q_proj", "vision_proj"]}}, "lora.target_modules"),
        ({"training": {"offload_scope": "everything"}}, "training.offload_scope"),
        ({"training": {"offloaded_layers": -1}}, "training.offloaded_layers"),
        # a layer count means nothing to trl's scope, which moves every saved tensor
        ({"training": {"offloaded_layers": 8}}, "training.offloaded_layers counts decoder-layer inputs"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(overrides, field):
    with pytest.raises(PipelineInputError, match="invalid training recipe") as error:
        load_recipe("1b", overrides)
    assert field in str(error.value)


def test_compiled_layers_are_accepted_with_lora_dropout_and_checkpointing():
    """Refused for one stop while the compiled recompute drew fresh dropout masks; the checkpoint outside
    the compiled graph fixed that."""
    recipe = load_recipe("1b", {"training": {"compiled_layers": True}})
    assert recipe.training.compiled_layers and recipe.training.gradient_checkpointing and recipe.lora.lora_dropout > 0


def test_cpu_budget_replaces_steps_and_length():
    recipe = load_recipe("4b").for_cpu()
    assert recipe.training.max_steps == 30 and recipe.training.max_length == 512
    assert recipe.lora.r == 32


# --- what the trainer feeds the model ------------------------------------------------------

def _trainer(tiny_model_dir, rows, tmp_path, quantized=False):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    recipe = load_recipe("270m").for_cpu()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.use_cache = False
    job = TrainingJob(recipe, tiny_model_dir, tmp_path, tmp_path)
    return SFTTrainer(model=model, args=sft_config(job, recipe, tmp_path / "c", "cpu"),
                      train_dataset=Dataset.from_list(rows), processing_class=load_tokenizer(tiny_model_dir))


def test_loss_only_on_the_model_turn_including_end_of_turn(tiny_model_dir, tmp_path):
    pairs = [to_messages("Kısa ol.", "Başkent neresi?", "", "Ankara."), to_messages("", "Renk say.", "", "Mavi, yeşil.")]
    rows = [{"prompt": [m[0]], "completion": [m[1]]} for m in pairs]
    trainer = _trainer(tiny_model_dir, rows, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    tokenizer = trainer.processing_class
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    supervised = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert supervised == "Ankara.<end_of_turn>\nMavi, yeşil.<end_of_turn>\n"
    assert ids.count(2) == 2  # one <bos> per packed example, never two
    assert "attention_mask" not in batch  # an all-ones mask would let packed examples see each other


def test_packed_examples_do_not_attend_to_each_other(tiny_model_dir, tmp_path):
    pairs = [to_messages("", "Bir şehir söyle.", "", "İzmir."), to_messages("", "Bir hayvan söyle.", "", "Kedi ve köpek.")]
    rows = [{"prompt": [m[0]], "completion": [m[1]]} for m in pairs]
    trainer = _trainer(tiny_model_dir, rows, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model.eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [batch["input_ids"].shape[1]]
        for start, end in zip(starts, starts[1:]):
            alone = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=1e-4)


def test_a_finished_trainer_leaves_no_embedding_alive_in_bitsandbytes(tiny_model_dir, tmp_path):
    """Regression: the 8-bit optimizer's embedding registration kept a vocab x hidden tensor alive
    after its trainer, inflating the next trainer's peak in the same process by that much."""
    import gc
    import weakref

    from bitsandbytes.optim import GlobalOptimManager

    rows = [{"prompt": [m[0]], "completion": [m[1]]} for m in [to_messages("", "Bir renk söyle.", "", "Mavi.")]]
    trainer = _trainer(tiny_model_dir, rows, tmp_path)
    assert trainer.args.optim == "paged_adamw_8bit"
    trainer.create_optimizer()
    embedding = weakref.ref(trainer.model.get_input_embeddings())
    assert any(m is embedding() for m, _, _ in GlobalOptimManager.get_instance().module_weight_config_triple)
    del trainer
    gc.collect()
    assert embedding() is not None  # what the leak was: bitsandbytes still holds it
    release_optimizer_registry()  # what `train` does when it is done
    gc.collect()
    assert embedding() is None


# --- guards ----------------------------------------------------------------------------------

class _State:
    def __init__(self, step):
        self.global_step = step


def test_non_finite_loss_stops_training_naming_the_step():
    guard = LossGuard()
    guard.on_log(None, _State(1), None, logs={"loss": 2.0})
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* at step 7"):
        guard.on_log(None, _State(7), None, logs={"loss": float("nan")})
    with pytest.raises(NonFiniteLossError, match="grad_norm .* at step 8"):
        LossGuard().on_log(None, _State(8), None, logs={"loss": 1.0, "grad_norm": float("inf")})


def test_diverging_loss_stops_training_naming_the_step():
    guard = LossGuard(divergence_factor=4.0, patience=3)
    guard.on_log(None, _State(1), None, logs={"loss": 2.0})
    for step in (2, 3):
        guard.on_log(None, _State(step), None, logs={"loss": 50.0})
    with pytest.raises(NonFiniteLossError, match="diverged at step 4"):
        guard.on_log(None, _State(4), None, logs={"loss": 60.0})


def test_nan_filter_of_the_trainer_is_switched_off(tiny_model_dir, tmp_path):
    recipe = load_recipe("270m")
    args = sft_config(TrainingJob(recipe, tiny_model_dir, tmp_path, tmp_path), recipe, tmp_path, "cpu")
    assert args.logging_nan_inf_filter is False


def test_incomplete_and_foreign_checkpoints_are_set_aside(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, complete in ((2, True), (4, True), (6, False)):
        checkpoint = folder / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (checkpoint / "trainer_state.json").write_text("{}")
    (folder / JOB_FILE).write_text(json.dumps({"fingerprint": "job-a"}))
    resume, notes = prepare_checkpoint_dir(folder, "job-a")
    assert resume.name == "checkpoint-4"
    assert any("incomplete checkpoint-6" in note for note in notes)
    assert not (folder / "checkpoint-6").exists()

    resume, notes = prepare_checkpoint_dir(folder, "job-b")  # new data or recipe: start over
    assert resume is None and any("different job" in note for note in notes)


# --- recipes in the code version -----------------------------------------------------------

def test_editing_a_recipe_changes_the_training_code_version(tmp_path, monkeypatch):
    import shutil

    import tr_gemma.training.recipe as recipe_module

    copy = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, copy)
    monkeypatch.setattr(recipe_module, "RECIPES_DIR", copy)
    before = recipe_module.recipes_digest()
    path = copy / "gemma-3-1b.yaml"
    path.write_text(path.read_text().replace("learning_rate: 2.0e-4", "learning_rate: 1.0e-4"))
    assert recipe_module.recipes_digest() != before
