"""A full disk (ENOSPC at the write call) while an asset writes its output.

The run fails at once (no retry) with a message that names the file and the free space, and the
previous good output stays in place, readable. The checkpoint case is in test_training_faults.
"""

import errno
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.instructions import clean_instructions, raw_instructions
from tests.conftest import instruction_row, write_jsonl
from tests.reliability.conftest import failure_chain
from tr_gemma.atomic_io import atomic_directory
from tr_gemma.errors import DiskFullError


def _fill_disk_on(monkeypatch, method: str):
    """DataFrame.<method> writes a few bytes, then the disk is full."""

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, method, full)


@pytest.mark.parametrize(
    "asset,method,file",
    [
        ("raw_instructions", "to_parquet", "data.parquet"),  # the IO manager's stored output
        ("clean_instructions", "to_json", "rejects.jsonl"),  # a file the asset writes itself
    ],
)
def test_disk_full_fails_the_step_once_and_keeps_the_previous_output(resources, tmp_path, monkeypatch, asset, method, file):
    rows = [instruction_row(instruction=f"Soru {i}?", output=f"Cevap {i}.") for i in range(5)] + [instruction_row(output="")]
    config = {"ops": {"raw_instructions": {"config": {"source": "path", "path": str(write_jsonl(tmp_path / "d.jsonl", rows))}}}}
    assert dg.materialize([raw_instructions, clean_instructions], resources=resources, run_config=config).success
    stored = Path(resources["artifacts"].root).resolve() / asset / file
    before = stored.read_bytes()

    _fill_disk_on(monkeypatch, method)
    started = time.monotonic()
    result = dg.materialize([raw_instructions, clean_instructions], resources=resources, run_config=config,
                           raise_on_error=False)
    assert time.monotonic() - started < 10  # no retry with backoff: another try fills the same disk
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = failure_chain(result)
    assert f"No space left on device while writing {stored}" in message and "GiB free" in message
    assert f"the previous {file} (if any) is intact" in message

    assert stored.read_bytes() == before  # untouched and still readable
    if file.endswith(".parquet"):
        assert len(pd.read_parquet(stored)) == len(rows)
    assert not [p.name for p in stored.parent.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_while_saving_an_adapter_keeps_the_previous_adapter(tmp_path):
    """The trainer saves the adapter through atomic_directory(replace=True), as here."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"previous weights")
    with pytest.raises(DiskFullError, match=r"No space left on device while writing .*adapter") as error:
        with atomic_directory(adapter, replace=True) as staging:
            (staging / "adapter_model.safetensors").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert error.value.errno == errno.ENOSPC  # still an OSError for code that handles those
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"previous weights"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no staging folder left behind
