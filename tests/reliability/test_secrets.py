"""HF_TOKEN never leaves the environment: planted value, real runs, scan of everything written.

The token is set to a unique value, the pipeline runs on a real (sqlite) instance — data assets,
a Hub failure, base_model and a QLoRA training run through Dagster Pipes — and the value is looked
for in the event log, run records (run config, tags), asset metadata, error messages, the artifact
files and everything the instance wrote to disk. The kill test in test_training_faults scans the
trainer's checkpoints (training_args.bin included) the same way.
"""

import os
from pathlib import Path

import dagster as dg
import httpx2
import pandas as pd
from huggingface_hub import HfApi, errors

from assets.base_model import base_model
from assets.instructions import clean_instructions, raw_instructions
from assets.qlora_adapter import qlora_adapter
from tests.reliability.conftest import PLANTED_TOKEN, failure_chain, files_containing

FAST_CHILD = Path(__file__).parent / "fast_child"


def test_planted_hf_token_appears_in_no_log_metadata_file_or_error(tmp_path, monkeypatch, tiny_model_dir, chat_parquet):
    from resources import build_resources

    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FAST_CHILD), os.environ.get("PYTHONPATH")])))
    tokens_sent = []

    def gated(self, repo_id, revision=None, timeout=None, token=None, **kwargs):
        tokens_sent.append(token)
        url = f"https://huggingface.co/api/datasets/{repo_id}/revision/{revision}"
        raise errors.GatedRepoError("403 gated", response=httpx2.Response(403, request=httpx2.Request("GET", url)))

    monkeypatch.setattr(HfApi, "dataset_info", gated)
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    artifacts = tmp_path / "artifacts"
    resources = build_resources(artifacts_root=str(artifacts), cache_dir=str(tmp_path / "cache"))
    (artifacts / "gemma_chat_dataset").mkdir(parents=True)
    chat = pd.read_parquet(chat_parquet)  # 4 training rows and 1 held out: one short CPU step
    pd.concat([chat[chat.split == "train"].head(4), chat[chat.split == "eval"].head(1)]).to_parquet(
        artifacts / "gemma_chat_dataset" / "data.parquet")

    def materialize(assets, config, partition=None):
        return dg.materialize(assets, resources=resources, instance=instance, partition_key=partition,
                              run_config={"ops": config}, raise_on_error=False)

    runs = [
        materialize([raw_instructions, clean_instructions], {}),
        materialize([raw_instructions], {"raw_instructions": {"config": {"source": "hub"}}}),
        materialize([base_model], {"base_model": {"config": {"source": "path", "path": str(tiny_model_dir)}}}, "270m"),
        materialize([qlora_adapter], {"qlora_adapter": {"config": {"cpu_max_steps": 1}}}, "270m"),
    ]
    assert [run.success for run in runs] == [True, False, True, True], failure_chain(runs[-1]) if not runs[-1].success else ""
    assert tokens_sent == [PLANTED_TOKEN]  # the token was really in play

    written = []
    for run in runs:
        written.append(dg.serialize_value(instance.get_run_by_id(run.run_id)))  # run config and tags
        written += [dg.serialize_value(entry) for entry in instance.all_logs(run.run_id)]  # logs, metadata, errors
    written.append(failure_chain(runs[1]))
    assert "the repository is gated" in written[-1]
    assert any("step 1/1 loss=" in text for text in written)  # the trainer's own log lines were scanned
    assert not [text[:200] for text in written if PLANTED_TOKEN in text]
    metadata = runs[3].asset_materializations_for_node("qlora_adapter")[0].metadata
    assert PLANTED_TOKEN not in str({k: v.value for k, v in metadata.items()})
    adapter = Path(metadata["adapter_path"].value)
    assert (adapter / "recipe.json").is_file()  # the saved recipe is among the scanned files
    weights = [p.name for p in adapter.iterdir() if p.suffix in {".safetensors", ".bin", ".pt", ".pth", ".pkl"}]
    assert weights == ["adapter_model.safetensors"]  # saved as safetensors only
    assert files_containing(artifacts, PLANTED_TOKEN) == []
    assert files_containing(home, PLANTED_TOKEN) == []  # sqlite event log, run storage, compute logs
