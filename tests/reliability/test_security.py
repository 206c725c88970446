"""No remote code, safetensors only, resume only from our own checkpoints, webserver on localhost.

Static checks over the project's source (so a later edit that turns one of these on fails CI)
and behavioural checks on the loaders.
"""

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.base_model import base_model

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("tr_gemma", "assets", "resources", "pipelines", "scripts", "benchmarks", "recipes", "deploy")
TEXT_SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".toml", ".jinja", ".json", ".cfg", ".txt", ""}


def _source_files():
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                yield path, path.read_text(encoding="utf-8", errors="replace")


def _offending(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path, text in _source_files()
            for n, line in enumerate(text.splitlines(), start=1) if regex.search(line)]


def test_source_files_are_found():
    names = {path.relative_to(ROOT).as_posix() for path, _ in _source_files()}
    assert {"tr_gemma/training/sft.py", "tr_gemma/evaluation/evaluate.py", "scripts/run_pipeline.sh"} <= names


def test_remote_code_is_never_enabled():
    assert _offending(r"trust_remote_code\s*[=:]\s*(True|true|1)\b|trust_remote_code=true") == []


def test_no_pickle_loading_and_no_pickle_weights():
    assert _offending(r"torch\.load\((?!.*weights_only=True)") == []  # a torch.load must say weights_only=True
    assert _offending(r"weights_only\s*=\s*False|pickle\.loads?\(|dill\.loads?\(") == []
    assert _offending(r"safe_serialization\s*=\s*False|torch\.save\(") == []
    assert _offending(r"(pytorch_model|adapter_model)\.bin") == []


def test_every_model_save_is_safetensors():
    import ast

    saves = []
    for path, text in _source_files():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save_pretrained":
                receiver = ast.unparse(node.func.value)
                if not any(word in receiver.lower() for word in ("tokenizer", "config", "processor")):
                    safe = any(k.arg == "safe_serialization" and getattr(k.value, "value", None) is True for k in node.keywords)
                    saves.append((f"{path.relative_to(ROOT)}:{node.lineno} {receiver}", safe))
    assert any("sft.py" in where for where, _ in saves), "expected the adapter save of sft.py"
    assert [where for where, safe in saves if not safe] == []


def test_checkpoint_folders_without_our_job_record_are_never_resumed(tmp_path):
    from tr_gemma.training.resume import prepare_checkpoint_dir

    folder = tmp_path / "checkpoints"
    foreign = folder / "checkpoint-10"
    foreign.mkdir(parents=True)
    (foreign / "trainer_state.json").write_text("{}")
    (foreign / "adapter_model.safetensors").write_bytes(b"x")
    (foreign / "optimizer.pt").write_bytes(b"not ours")
    resume, notes = prepare_checkpoint_dir(folder, "job-a")
    assert resume is None and any("not written by this pipeline" in note for note in notes)
    assert not (folder / "checkpoint-10").exists()


@pytest.fixture(scope="module")
def booby_trapped_model(tmp_path_factory, tiny_model_dir):
    """The tiny model whose config and tokenizer point at remote code that leaves a marker if run."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("remote") / "model"
    shutil.copytree(tiny_model_dir, folder)
    marker = folder.parent / "remote_code_ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "from transformers import Gemma3ForCausalLM as EvilModel, GemmaTokenizerFast as EvilTokenizer\n")
    for name, key, value in (("config.json", "AutoModelForCausalLM", "evil.EvilModel"),
                             ("tokenizer_config.json", "AutoTokenizer", ["evil.EvilTokenizer", "evil.EvilTokenizer"])):
        config = json.loads((folder / name).read_text())
        config["auto_map"] = {key: value}
        (folder / name).write_text(json.dumps(config))
    return folder, marker


def test_loaders_ignore_remote_code_in_a_checkpoint(booby_trapped_model, tmp_path):
    from transformers import Gemma3ForCausalLM

    from tests.reliability.conftest import tiny_job
    from tr_gemma.evaluation.evaluate import EvalSettings, load_model
    from tr_gemma.training.sft import load_quantized_model, load_tokenizer

    folder, marker = booby_trapped_model
    job = tiny_job(tmp_path, folder, tmp_path / "unused.parquet")
    assert isinstance(load_quantized_model(job, "cpu"), Gemma3ForCausalLM)
    assert isinstance(load_model(folder, None, EvalSettings(load_in_4bit=False)), Gemma3ForCausalLM)
    load_tokenizer(folder)
    assert not marker.exists()


def test_pickled_weights_are_refused(resources, tmp_path, tiny_model_dir):
    import shutil

    from tests.reliability.conftest import failure_chain

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    result = dg.materialize([base_model], resources=resources, partition_key="270m", raise_on_error=False,
                            run_config={"ops": {"base_model": {"config": {"source": "path", "path": str(folder)}}}})
    assert "has no *.safetensors weights; only safetensors checkpoints are loaded" in failure_chain(result)

    from tr_gemma.evaluation.evaluate import EvalSettings, load_model

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="only safetensors adapters are loaded"):
        load_model(tiny_model_dir, adapter, EvalSettings(load_in_4bit=False))


def test_webserver_binds_to_localhost_unless_told_otherwise():
    help_text = subprocess.run([str(Path(sys.executable).with_name("dagster-webserver")), "--help"],
                               capture_output=True, text=True, timeout=120).stdout
    assert re.search(r"--host TEXT\s+Host to run server on\s+\[default: 127\.0\.0\.1\]", help_text)
    commands = [line for path in [ROOT / "README.md", *sorted((ROOT / "scripts").glob("*.sh"))]
                for line in path.read_text().splitlines() if re.search(r"dagster(-webserver)? dev\b|dagster-webserver\b", line)]
    assert commands and not [c for c in commands if "0.0.0.0" in c], commands
    assert all("-h 127.0.0.1" in c for c in commands if " dev " in c + " ")


def test_readme_says_how_to_put_the_ui_behind_an_authenticating_proxy():
    readme = (ROOT / "README.md").read_text()
    assert "binds to 127.0.0.1" in readme and "authenticating reverse proxy" in readme
    assert "oauth2-proxy" in readme and "--upstream=http://127.0.0.1:3000" in readme
    assert "docs/reliability.md" in readme
