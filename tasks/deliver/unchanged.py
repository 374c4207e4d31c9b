"""What the last delivery into a film folder wrote, so that an unchanged delivery writes nothing.

Each written file is entered under its name with the key of what it was made from and the
size and modification time it had when written. A later delivery whose key for that file is
the same, and finds the file as it left it, skips the write: a cached re-run copies no film,
draws no contact sheet and exports no timeline again. A file someone edited, moved or deleted
is written again; so is everything when this record is missing or unreadable.

The record lives in the run's scratch folder, not in the film folder an editor takes away.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.runtime.files import write_atomic

LEDGER_VERSION = 1
"""Bump when a deliverable's drawing or export changes, so every folder gets it again."""


class Written(BaseModel):
    """One file as the delivery left it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    size: int
    mtime_ns: int


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = LEDGER_VERSION
    files: dict[str, Written] = {}
    groups: dict[str, dict[str, str]] = {}


def made_from(*parts: Any) -> str:
    """A key for what a file is made from: JSON-able parts, and paths by their current state."""
    canonical = json.dumps(parts, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return file_state(value)
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"{type(value).__name__} cannot describe a deliverable's source")
    return dump(mode="json")


def file_state(path: Path) -> list[Any]:
    """A file as it is now: where, how large, when last written (a different file, or the
    same file rewritten, reads differently)."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


class DeliveryLedger:
    """The record of one film folder's last delivery (read at start, saved at the end)."""

    def __init__(self, folder: Path, records: Path) -> None:
        """The ledger of `folder`, kept in the `records` folder (one file per film folder)."""
        self.folder = folder
        where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
        self.path = records / f"{where}.json"
        self._record = _read(self.path)

    def unchanged(self, target: Path, key: str) -> bool:
        """True when `target` was written from `key` and is still exactly as written."""
        entry = self._record.files.get(self._name(target))
        if entry is None or entry.key != key or not target.is_file():
            return False
        stat = target.stat()
        return (stat.st_size, stat.st_mtime_ns) == (entry.size, entry.mtime_ns)

    def wrote(self, target: Path, key: str) -> Path:
        """Enter `target` as just written from `key`; returns it."""
        stat = target.stat()
        self._record.files[self._name(target)] = Written(
            key=key, size=stat.st_size, mtime_ns=stat.st_mtime_ns
        )
        return target

    def unchanged_group(self, group: str, key: str) -> dict[str, Path] | None:
        """The files written together as `group` (by their role), when all are unchanged."""
        names = self._record.groups.get(group)
        if names is None:
            return None
        paths = {role: self.folder / name for role, name in names.items()}
        return paths if all(self.unchanged(p, key) for p in paths.values()) else None

    def wrote_group(self, group: str, key: str, paths: dict[str, Path]) -> dict[str, Path]:
        """Enter the files of `group` (by their role) as just written from `key`."""
        self._record.groups[group] = {role: self._name(p) for role, p in paths.items()}
        for path in paths.values():
            self.wrote(path, key)
        return paths

    def save(self) -> None:
        write_atomic(self.path, self._record.model_dump_json(indent=1).encode())

    def _name(self, target: Path) -> str:
        return target.relative_to(self.folder).as_posix()


def _read(path: Path) -> _Record:
    try:
        record = _Record.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return _Record()
    return record if record.version == LEDGER_VERSION else _Record()
