"""A full disk, said in one line: which disk, how much is free, how much the film needs."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.errors import DiskFull

_NO_SPACE = "no space left"


def _chain(failure: BaseException | None) -> Iterator[BaseException]:
    """`failure`, what caused it, and the causes it collected (a failed film's chains)."""
    seen: set[int] = set()
    waiting = [failure] if failure is not None else []
    while waiting:
        current = waiting.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        waiting.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        waiting.extend(c for c in getattr(current, "causes", ()) if isinstance(c, BaseException))


def is_disk_full(failure: BaseException | None) -> bool:
    """Whether `failure`, or anything that caused it, is a disk running out of space."""
    for current in _chain(failure):
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if _NO_SPACE in str(current).lower():
            return True
    return False


def failing_path(failure: BaseException | None) -> Path | None:
    """The file or folder a disk-full error was writing, if it names one."""
    for current in _chain(failure):
        if isinstance(current, OSError) and current.filename:
            return Path(os.fsdecode(current.filename))
        for named in ("path", "folder"):  # DiskFull here, and tasks.media's DiskFull
            where = getattr(current, named, None)
            if isinstance(where, str | Path) and str(where):
                return Path(where)
    return None


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds `path` (or would hold it)."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


BYTES_PER_PIXEL_SECOND = 0.0125
"""H.264 at about 0.1 bit per pixel per frame, in bytes: a generous figure for renders."""
AUDIO_BYTES_PER_SECOND = 24_000
COPIES = 5
"""Raw render, normalized sequence, cut film, and the film folder's sequence and film."""


def film_bytes(width: int, height: int, fps: float, seconds: float) -> int:
    """About how many bytes a film of this size takes on disk, all its copies counted."""
    per_second = width * height * fps * BYTES_PER_PIXEL_SECOND + AUDIO_BYTES_PER_SECOND
    return int(COPIES * seconds * per_second)


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def disk_full(path: Path, needed_bytes: int | None = None) -> DiskFull:
    """The one-line error for a full disk while writing `path`."""
    mount = mount_point(path)
    free = shutil.disk_usage(mount).free
    need = f"; this film needs about {_size(needed_bytes)} there" if needed_bytes else ""
    return DiskFull(
        f"the disk holding {path} (mounted at {mount}) is full: {_size(free)} free{need}. "
        "Free some space or choose another --out/--store, then run the same command again: "
        "everything finished is kept.",
        path=str(path),
    )


@contextmanager
def raise_if_disk_full(path: Path) -> Iterator[None]:
    """Turn ENOSPC while writing `path` into DiskFull naming its disk."""
    try:
        yield
    except OSError as failure:
        if not is_disk_full(failure):
            raise
        raise disk_full(failing_path(failure) or path) from failure
