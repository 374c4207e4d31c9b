"""How deliverables are named: the film folder, the film file, a sequence's label."""

from __future__ import annotations

import re
from pathlib import Path

from tasks.schema.film_plan import Sequence

_UNSAFE_IN_NAMES = re.compile(r'[\x00-\x1f/\\:*?"<>|]+')


def film_path(folder: Path, title: str) -> Path:
    """`<folder>/<title>.mp4`, with characters no file system accepts replaced."""
    name = _UNSAFE_IN_NAMES.sub("_", title).strip(" .") or "film"
    return folder / f"{name}.mp4"


def film_folder(out: Path, title: str) -> Path:
    """`OUT/<title as a slug>`: one folder per film."""
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "film"
    return out / slug


def sequence_label(sequence: Sequence) -> str:
    """`seq N · scenes a-b` (or `scene a`), as on the contact sheet."""
    scenes = sequence.scene_indices
    span = f"scene {scenes[0]}" if len(scenes) == 1 else f"scenes {scenes[0]}-{scenes[-1]}"
    return f"seq {sequence.index} · {span}"
