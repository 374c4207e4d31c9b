"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary name beside `path` (same suffix), renamed onto it on success.

    The writer creates the file itself, so it gets the user's normal permissions; a killed
    run leaves only a hidden temporary name that nothing reads.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
"""The project's configuration folder: defaults, models, node packs, workflow templates."""


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary name in the same folder, fsync, then rename over `path`."""
    with atomic_path(path) as temporary, temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path


def copy_atomic(source: Path, path: Path) -> Path:
    """Copy `source` to `path` so that `path` is either absent or complete."""
    with atomic_path(path) as temporary:
        shutil.copyfile(source, temporary)
    return path


def link_or_copy_atomic(source: Path, path: Path) -> Path:
    """A hard link where the filesystem allows (instant, no extra space), else a copy.

    Only for immutable, content-addressed files: both names share one inode.
    """
    with atomic_path(path) as temporary:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
    return path
