"""base_model: text-only extraction from multimodal checkpoints, GGUF conversion cache, errors."""

import json

import dagster as dg
import pytest
import torch

from assets.base_model import base_model
from tests.conftest import step_failure_message
from tests.tiny_gemma import save_tiny_multimodal
from tr_gemma.checkpoints import extract_text_model


def test_text_only_extraction_loads_every_language_weight(tmp_path):
    from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration

    source = save_tiny_multimodal(tmp_path / "tiny-4b-like")
    target = extract_text_model(source, tmp_path / "text-only")

    text_model, info = Gemma3ForCausalLM.from_pretrained(target, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not any("vision" in name or "multi_modal" in name for name, _ in text_model.named_parameters())

    full = Gemma3ForConditionalGeneration.from_pretrained(source).eval()
    ids = torch.tensor([[2, 105, 10, 11, 12, 106]])
    with torch.no_grad():
        expected = full(input_ids=ids).logits
        actual = text_model.eval()(input_ids=ids).logits
    torch.testing.assert_close(actual, expected)


def test_naive_causal_lm_load_of_a_multimodal_folder_would_be_random(tmp_path):
    """The pitfall the extraction guards against: no exception, just missing weights."""
    from transformers import Gemma3ForCausalLM

    source = save_tiny_multimodal(tmp_path / "tiny")
    _, info = Gemma3ForCausalLM.from_pretrained(source, output_loading_info=True)
    assert any("layers.0.self_attn.q_proj" in key for key in info["missing_keys"])


def test_extraction_fails_when_a_language_weight_is_missing(tmp_path):
    from safetensors.torch import load_file, save_file

    source = save_tiny_multimodal(tmp_path / "tiny")
    shard = source / "model.safetensors"
    tensors = load_file(shard)
    dropped = next(k for k in tensors if "layers.1.mlp.down_proj" in k)
    del tensors[dropped]
    save_file(tensors, shard, metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="language-model weights are missing"):
        extract_text_model(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gguf_conversion_is_cached_by_sha_and_reused(monkeypatch):
    from tr_gemma import checkpoints

    folder = checkpoints.ensure_embedded_checkpoint(checkpoints.default_cache_dir())
    assert checkpoints.embedded_gguf_sha256()[:16] in str(folder)

    def must_not_convert(*args, **kwargs):
        raise AssertionError("the cached conversion should have been reused")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", must_not_convert)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", must_not_convert)
    assert checkpoints.ensure_embedded_checkpoint(checkpoints.default_cache_dir()) == folder
    assert checkpoints.ensure_embedded_tokenizer(checkpoints.default_cache_dir()).is_dir()


def test_base_model_270m_materializes_the_real_checkpoint(resources):
    result = dg.materialize([base_model], resources=resources, partition_key="270m")
    meta = result.asset_materializations_for_node("base_model")[0].metadata
    assert meta["vocab_size"].value == 262_144
    assert meta["layers"].value == 18 and meta["kv_heads"].value == 1
    assert 260_000_000 < meta["parameters"].value < 280_000_000
    assert meta["dtype"].value == "BF16"
    manifest = json.loads(open(meta["manifest"].value).read())
    assert manifest["path"] == meta["path"].value


def test_embedded_source_only_has_270m(resources):
    result = dg.materialize(
        [base_model], resources=resources, partition_key="1b", raise_on_error=False,
        run_config={"ops": {"base_model": {"config": {"source": "embedded"}}}},
    )
    assert "only has Gemma 3 270M" in step_failure_message(result)


def test_hub_source_offline_names_the_model_and_the_alternatives(resources):
    result = dg.materialize([base_model], resources=resources, partition_key="4b", raise_on_error=False)
    message = step_failure_message(result)
    assert "google/gemma-3-4b-pt" in message and "unreachable" in message
    assert "'embedded'" in message and "'path'" in message


def test_local_multimodal_path_is_converted_to_text_only(resources, tmp_path):
    source = save_tiny_multimodal(tmp_path / "my-gemma")
    result = dg.materialize(
        [base_model], resources=resources, partition_key="4b",
        run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(source)}}}},
    )
    meta = result.asset_materializations_for_node("base_model")[0].metadata
    config = json.loads(open(f"{meta['path'].value}/config.json").read())
    assert config["model_type"] == "gemma3_text"
