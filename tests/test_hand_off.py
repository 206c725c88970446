"""Hand-off core: the bf16 merge equals base + adapter, the shipped generation config stops on
<end_of_turn> and <eos>, sample prompts render like the training data (tiny random Gemma 3)."""

import json

import pytest

from tests.tiny_gemma import save_tiny_text_model, tiny_text_config

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPT = "<bos><start_of_turn>user\nİstanbul'da hafta sonu ne yapılır?<end_of_turn>\n<start_of_turn>model\nBoğaz'da"


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, gemma_tokenizer_dir):
    return save_tiny_text_model(tmp_path_factory.mktemp("base") / "model", gemma_tokenizer_dir)


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_base):
    """A rank-4 LoRA adapter on all seven projections with non-zero B (a fresh adapter is a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS,
                                            task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    folder = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def merged(tmp_path_factory, tiny_base, tiny_adapter):
    from tr_gemma.handoff.merge import merge_adapter

    output = tmp_path_factory.mktemp("merged") / "model"
    return output, merge_adapter(tiny_base, tiny_adapter, output, log=lambda line: None)


def _logits(model, tokenizer):
    import torch

    ids = tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        return model(ids).logits.float()


def test_merged_logits_equal_base_plus_adapter_within_bf16(merged, tiny_base, tiny_adapter):
    """bf16 tolerance = how far bf16 base + adapter (PEFT, unmerged) itself is from the exact fp32
    result: the merged bf16 model must be as close to exact as that, element by element too."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, report = merged
    tokenizer = AutoTokenizer.from_pretrained(folder)
    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    assert next(reloaded.parameters()).dtype == torch.bfloat16
    merged_logits = _logits(reloaded, tokenizer)
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16)
    base_logits = _logits(base, tokenizer)
    reference = _logits(PeftModel.from_pretrained(base, tiny_adapter), tokenizer)
    exact = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32),
                                              tiny_adapter), tokenizer)

    relative = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    bf16_noise = relative(reference, exact)
    assert relative(merged_logits, exact) <= 1.5 * bf16_noise, (relative(merged_logits, exact), bf16_noise)
    torch.testing.assert_close(merged_logits, reference, rtol=0, atol=2 * float((reference - exact).abs().max()))
    assert relative(reference, base_logits) > 20 * relative(merged_logits, reference)  # the adapter is in
    assert report.passed and report.logits_relative_error <= report.tolerance and report.adapter_effect > 0.5


def test_merged_folder_is_safetensors_with_tokenizer_template_and_stop_tokens(merged, gemma_tokenizer):
    from safetensors import safe_open

    from tr_gemma.chat_format import gemma3_chat_template

    folder, report = merged
    files = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", "merge.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert (folder / "chat_template.jinja").read_text() == gemma3_chat_template()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    with safe_open(folder / "model.safetensors", "pt") as handle:
        assert not any("lora" in key for key in handle.keys())
        assert {str(handle.get_slice(key).get_dtype()) for key in handle.keys()} == {"BF16"}

    ids = [gemma_tokenizer.convert_tokens_to_ids(t) for t in ("<eos>", "<end_of_turn>")]
    assert ids == [1, 106]
    generation = json.loads((folder / "generation_config.json").read_text())
    assert generation["eos_token_id"] == ids == report.stop_token_ids
    assert generation["pad_token_id"] == gemma_tokenizer.pad_token_id == 0
    assert json.loads((folder / "merge.json").read_text())["dtype"] == "bfloat16"


def test_sample_prompts_render_like_the_shipped_chat_template(merged):
    from transformers import AutoTokenizer

    from tr_gemma.handoff.generation import prompt_text, template_messages
    from tr_gemma.handoff.sample_prompts import SAMPLE_PROMPTS

    tokenizer = AutoTokenizer.from_pretrained(merged[0])
    assert len(SAMPLE_PROMPTS) == 6 and len({p.id for p in SAMPLE_PROMPTS}) == 6
    assert {"everyday question", "instruction", "short rewrite", "math word problem",
            "with a system instruction"} <= {p.kind for p in SAMPLE_PROMPTS}
    for prompt in SAMPLE_PROMPTS:
        expected = tokenizer.apply_chat_template(template_messages(prompt), add_generation_prompt=True, tokenize=False)
        assert prompt_text(prompt) == expected
    system = next(p for p in SAMPLE_PROMPTS if p.system)
    assert prompt_text(system).startswith(f"<bos><start_of_turn>user\n{system.system}\n\n{system.instruction}")


def _scripted_model(folder, tokenizer, stop_token: str):
    """A Gemma 3 whose greedy answer is always 'Merhaba' '!' <stop_token>, saved like the merge.

    Attention and MLP outputs are zeroed, so the logits depend only on the current token's
    embedding: tokens default to state 0 (-> 'Merhaba'), 'Merhaba' is state 1 (-> '!'), '!' is
    state 2 (-> the stop token). The generation config is the hand-off one.
    """
    import torch
    from transformers import Gemma3ForCausalLM

    from tr_gemma.handoff.merge import configure_generation

    first, second = tokenizer("Merhaba!", add_special_tokens=False).input_ids
    stop = tokenizer.convert_tokens_to_ids(stop_token)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(tiny_text_config(hidden_size=64, intermediate_size=128, head_dim=32,
                                               tie_word_embeddings=False)).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embedding, head = model.model.embed_tokens.weight, model.lm_head.weight
        embedding.zero_()
        embedding[:, 0] = 1.0
        for token, state in ((first, 1), (second, 2)):
            embedding[token] = 0.0
            embedding[token, state] = 1.0
        head.zero_()
        for token, state in ((first, 0), (second, 1), (stop, 2)):
            head[token, state] = 10.0
    configure_generation(model, tokenizer)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_generation_stops_on_the_shipped_stop_tokens(tmp_path, gemma_tokenizer_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from tr_gemma.handoff.generation import answer_prompts, generate_answers, prompt_text, read_stop_ids
    from tr_gemma.handoff.merge import load_tokenizer_with_template
    from tr_gemma.handoff.sample_prompts import SAMPLE_PROMPTS

    quiet = lambda line: None  # noqa: E731
    tokenizer = load_tokenizer_with_template(gemma_tokenizer_dir)
    for stop_token in ("<end_of_turn>", "<eos>"):
        folder = _scripted_model(tmp_path / stop_token.strip("<>"), tokenizer, stop_token)
        stop_ids = read_stop_ids(folder)
        assert stop_ids == [1, 106]
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        answers = answer_prompts(model, tokenizer, SAMPLE_PROMPTS[:2], stop_ids, max_new_tokens=9, log=quiet)
        assert [(a.text, a.new_tokens, a.stop) for a in answers] == [("Merhaba!", 3, stop_token)] * 2

        # A plain generate() with no stop argument stops too: the saved generation config has both ids.
        inputs = tokenizer(prompt_text(SAMPLE_PROMPTS[0]), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            new = model.generate(**inputs, max_new_tokens=9, do_sample=False)[0, inputs.input_ids.shape[1]:].tolist()
        assert len(new) == 3 and tokenizer.convert_ids_to_tokens(new[-1]) == stop_token

        # Control: without that stop id the same model runs on to max_new_tokens.
        other = [i for i in stop_ids if tokenizer.convert_ids_to_tokens(i) != stop_token]
        runaway = answer_prompts(model, tokenizer, SAMPLE_PROMPTS[:1], other, max_new_tokens=7, log=quiet)[0]
        assert (runaway.stop, runaway.new_tokens) == ("max_new_tokens", 7)
        assert runaway.text.startswith("Merhaba!Merhaba!")

    # The loading path the asset uses (CPU, float32, eager attention) gives the same answer.
    answer = generate_answers(folder, SAMPLE_PROMPTS[4:5], stop_ids, max_new_tokens=9, log=quiet)[0]
    assert (answer.text, answer.stop) == ("Merhaba!", "<eos>")


def test_side_by_side_markdown_keeps_one_row_per_prompt():
    from tr_gemma.handoff.generation import Answer, side_by_side_markdown
    from tr_gemma.handoff.sample_prompts import SAMPLE_PROMPTS

    base = [Answer(p.id, "a | b\n\n<h2>c</h2>", 5, "max_new_tokens", 0.1) for p in SAMPLE_PROMPTS]
    tuned = [Answer(p.id, "Kızılırmak.", 4, "<end_of_turn>", 0.1) for p in SAMPLE_PROMPTS]
    table = side_by_side_markdown(SAMPLE_PROMPTS, base, tuned).splitlines()
    assert table[0] == "| # | prompt | base model | fine-tuned |" and len(table) == 2 + len(SAMPLE_PROMPTS)
    assert all(row.count(" | ") == 3 for row in table[2:])
    assert "a \\| b ⏎ &lt;h2&gt;c&lt;/h2&gt; _[…cut at max_new_tokens]_" in table[2]
    assert "_sistem:_ Sen çocuklara" in "\n".join(table) and "_beklenen:_ 48 - 17 - 19 = 12 kilo" in "\n".join(table)
