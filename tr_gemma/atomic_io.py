"""Writing results so that a crash or a full disk never leaves half a result in place.

Files and folders are written under a temporary name in the same directory and renamed into
place only when complete (rename is atomic on one filesystem). On failure the temporary is
removed and whatever was there before stays intact. A full disk (ENOSPC) is reported as a
`DiskFullError` that names the target and the free space, not as a bare errno.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tr_gemma.errors import DiskFullError


def disk_full(exc: BaseException, target: str | Path, what: str = "", consequence: str = "") -> DiskFullError | None:
    """`exc` restated for a person when it is a full disk (ENOSPC), else None."""
    if not isinstance(exc, OSError) or exc.errno != errno.ENOSPC or isinstance(exc, DiskFullError):
        return None
    target = Path(target)
    existing = next((p for p in target.parents if p.exists()), Path("/"))
    free_gib = shutil.disk_usage(existing).free / 2**30
    consequence = consequence or f"Nothing was replaced: the previous {target.name} (if any) is intact."
    return DiskFullError(
        errno.ENOSPC,
        f"No space left on device while writing {what or target} ({free_gib:.2f} GiB free on the disk "
        f"holding {existing}). {consequence} Free disk space, or move the artifacts root or TR_GEMMA_CACHE to a "
        "larger disk, and run again.",
    )


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; it replaces `target` when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, target)
    except BaseException as exc:
        staging.unlink(missing_ok=True)
        full = disk_full(exc, target)
        if full is not None:
            raise full from exc
        raise


@contextlib.contextmanager
def atomic_directory(target: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `target` when the block succeeds.

    With ``replace=False`` an existing `target` (finished by a concurrent process) wins and ours
    is discarded; with ``replace=True`` the old folder is swapped out and removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        full = disk_full(exc, target)
        if full is not None:
            raise full from exc
        raise
    if target.exists() and replace:
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            raise
