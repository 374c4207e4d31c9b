"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A temporary name in `path`'s folder, renamed over `path` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary name in the same folder, fsync, then rename over `path`."""
    with _temporary_beside(path) as temporary, temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path


def copy_atomic(source: Path, path: Path) -> Path:
    """Copy `source` to `path` so that `path` is either absent or complete."""
    with _temporary_beside(path) as temporary:
        shutil.copyfile(source, temporary)
    return path


def link_or_copy_atomic(source: Path, path: Path) -> Path:
    """A hard link where the filesystem allows (instant, no extra space), else a copy.

    Only for immutable, content-addressed files: both names share one inode.
    """
    with _temporary_beside(path) as temporary:
        try:
            temporary.unlink()
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
    return path
