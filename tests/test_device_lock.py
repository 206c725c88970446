"""The per-device host lock: a second process waits for the first, a killed holder frees the device."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from resources.device_lock import LOCK_DIR_ENV, exclusive_devices

ROOT = Path(__file__).resolve().parents[1]


def start_holder(lock_dir: Path, marker: Path, hold_s: float) -> subprocess.Popen:
    """Another process that holds gpu0, touches `marker` once it does, and releases after `hold_s`."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from resources.device_lock import exclusive_devices
        with exclusive_devices(["gpu0"], "run other-run (qlora_adapter[1b], pid x)", print, Path({str(lock_dir)!r})):
            Path({str(marker)!r}).touch()
            time.sleep({hold_s})
        print("released", time.time(), flush=True)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None, "the holder process died before taking the lock"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return holder


def test_a_second_process_waits_for_the_device_and_is_told_who_holds_it(tmp_path):
    holder = start_holder(tmp_path / "locks", tmp_path / "held", hold_s=1.5)
    messages = []
    with exclusive_devices(["gpu0"], "run this-run", messages.append, tmp_path / "locks", poll_s=0.05):
        acquired = time.time()
    released = float(holder.communicate(timeout=60)[0].split()[-1])
    assert acquired >= released
    assert any(m.startswith("Waiting for gpu0: in use by run other-run (qlora_adapter[1b], pid x)") for m in messages), messages
    assert any(m.startswith("Acquired gpu0 after waiting") for m in messages), messages


def test_a_killed_holder_never_leaves_the_device_locked(tmp_path):
    holder = start_holder(tmp_path / "locks", tmp_path / "held", hold_s=600)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    messages = []
    started = time.monotonic()
    with exclusive_devices(["gpu0"], "run this-run", messages.append, tmp_path / "locks", poll_s=0.05):
        waited = time.monotonic() - started
    assert messages == [] and waited < 5, (messages, waited)


def test_other_devices_are_not_held_up(tmp_path):
    holder = start_holder(tmp_path / "locks", tmp_path / "held", hold_s=600)
    try:
        messages = []
        with exclusive_devices(["gpu1", "cpu"], "run this-run", messages.append, tmp_path / "locks", poll_s=0.05):
            holders = {name: (tmp_path / "locks" / f"{name}.lock").read_text() for name in ("gpu1", "cpu")}
        assert messages == []
        assert holders == {"gpu1": "run this-run", "cpu": "run this-run"}
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_an_interrupted_wait_gives_up_cleanly(tmp_path):
    """A run terminated while waiting (Dagster raises in the step) leaves no lock behind."""
    holder = start_holder(tmp_path / "locks", tmp_path / "held", hold_s=600)
    try:
        def interrupt(message):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            with exclusive_devices(["cpu", "gpu0"], "run this-run", interrupt, tmp_path / "locks", poll_s=0.05):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with exclusive_devices(["cpu", "gpu0"], "run next-run", [].append, tmp_path / "locks", poll_s=0.05):
        assert (tmp_path / "locks" / "cpu.lock").read_text() == "run next-run"


def test_the_test_session_isolates_the_lock_folder_the_resource_reads():
    """tests/conftest.py spells the variable out (it must import without dagster)."""
    import os

    assert os.environ.get(LOCK_DIR_ENV), f"conftest did not set {LOCK_DIR_ENV}"
