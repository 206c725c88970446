"""One heavy step per device on this host: an exclusive kernel file lock per GPU (or the CPU).

Dagster's `gpu` pool is what queues heavy steps, but on the default SQLite storage its slot claim
is not atomic: two runs claiming within the same few milliseconds both get the one slot (seen in
CI: two `dagster asset materialize` processes started 60 ms apart trained side by side; Dagster
does not support pools on SQLite under concurrent claims, dagster-io/dagster#14644). On one host
this lock closes that gap. It is an `flock`: the kernel releases it when the holder's process
ends, even on SIGKILL, so a killed run never leaves a GPU locked.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the Dagster pool alone queues the steps
    fcntl = None

LOCK_DIR_ENV = "TR_GEMMA_DEVICE_LOCK_DIR"


def default_lock_dir() -> Path:
    """$TR_GEMMA_DEVICE_LOCK_DIR, else a folder in the system temp folder (shared by the host's users)."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "tr-gemma-device-locks")


@contextlib.contextmanager
def exclusive_devices(devices: Iterable[str], holder: str, log: Callable[[str], None], lock_dir: Path,
                      poll_s: float = 1.0, report_every_s: float = 60.0) -> Iterator[None]:
    """Hold every device in `devices` (e.g. "gpu0", "cpu") for the duration of the block.

    Waits while another process holds one, logging who holds it every `report_every_s`. Locks are
    taken in sorted order so two processes wanting overlapping sets never deadlock.
    """
    if fcntl is None:
        yield
        return
    lock_dir = Path(lock_dir)
    if not lock_dir.is_dir():
        lock_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # like /tmp: every user may add locks, none may remove another's
            lock_dir.chmod(0o1777)
    held = []
    try:
        for device in sorted(set(devices)):
            held.append(_acquire(lock_dir / f"{device}.lock", device, holder, log, poll_s, report_every_s))
        yield
    finally:
        for handle in reversed(held):
            os.close(handle)  # closing the descriptor releases its flock


def _acquire(path: Path, device: str, holder: str, log: Callable[[str], None], poll_s: float, report_every_s: float) -> int:
    handle = _open(path)
    waited_since, reported = None, float("-inf")
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                waited_since = waited_since or now
                if now - reported >= report_every_s:
                    log(f"Waiting for {device}: in use by {_holder_of(path)} ({now - waited_since:.0f} s so far; "
                        f"lock file {path}).")
                    reported = now
                time.sleep(poll_s)  # a poll, not a blocking flock: a run termination interrupts it at once
    except BaseException:
        os.close(handle)
        raise
    with contextlib.suppress(OSError):  # a read-only lock file (another user's) still locks
        os.ftruncate(handle, 0)
        os.pwrite(handle, holder.encode(), 0)
    if waited_since is not None:
        log(f"Acquired {device} after waiting {time.monotonic() - waited_since:.0f} s.")
    return handle


def _open(path: Path) -> int:
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY)
    with contextlib.suppress(OSError):  # the umask must not keep the host's other users out
        os.fchmod(handle, 0o666)
    return handle


def _holder_of(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"
