"""Turn an output node's plan into files named the way ComfyUI names them.

Also computes node cache signatures: two nodes with the same class, widget values, upstream
signatures (and, for loaders, the same file bytes) give the same result, so ComfyUI (and the
simulator) answer a repeated prompt from cache.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.animatic import render_still, render_video
from sim.casting import cast_render
from sim.folders import Folders
from sim.graph import MusicSpec, OutputPlan, VideoSpec
from sim.music import render_music
from sim.speech import SoundtrackFaults

_LOADERS = {
    "LoadImage": "image",
    "LoadImageMask": "image",
    "LoadVideo": "file",
    "LoadAudio": "audio",
}


def signature(prompt: Mapping[str, Mapping[str, Any]], node: str, folders: Folders) -> str:
    """A content hash of everything that determines ``node``'s result."""
    memo: dict[str, str] = {}

    def sign(node_id: str, trail: tuple[str, ...]) -> str:
        if node_id in memo:
            return memo[node_id]
        spec = prompt[node_id]
        parts: list[Any] = [spec["class_type"]]
        for name, value in sorted(spec.get("inputs", {}).items()):
            if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
                if value[0] in trail:
                    parts.append([name, "cycle"])
                else:
                    parts.append([name, sign(value[0], (*trail, node_id)), value[1]])
            else:
                parts.append([name, value])
        loader_input = _LOADERS.get(spec["class_type"])
        if loader_input is not None:
            found = folders.resolve(str(spec.get("inputs", {}).get(loader_input, "")))
            parts.append(hashlib.sha256(found.read_bytes()).hexdigest() if found else None)
        memo[node_id] = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        return memo[node_id]

    return sign(node, ())


def next_counter(folder: Path, filename: str) -> int:
    """One past the highest ``{filename}_NNNNN`` counter already in ``folder``."""
    pattern = re.compile(re.escape(filename) + r"_(\d{5})")
    highest = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1


def split_prefix(prefix: str) -> tuple[str, str]:
    """``"a/b/name"`` -> (``"a/b"``, ``"name"``); ComfyUI's default name when none is given."""
    subfolder, _, filename = prefix.replace("\\", "/").rpartition("/")
    return subfolder, filename or "ComfyUI"


def _item(filename: str, subfolder: str, kind: str) -> dict[str, str]:
    return {"filename": filename, "subfolder": subfolder, "type": kind}


@dataclass
class Rendered:
    """A node's history output and its files, staged under hidden names until committed."""

    output: dict[str, Any] | None
    staged: list[tuple[Path, Path]] = field(default_factory=list)

    def stage(self, final: Path) -> Path:
        """A hidden sibling path to render ``final`` into."""
        partial = final.with_name(f".{final.stem}.partial{final.suffix}")
        self.staged.append((partial, final))
        return partial

    def commit(self) -> dict[str, Any] | None:
        """Give the files their real names (the GPU work is done) and return the output."""
        for partial, final in self.staged:
            partial.replace(final)
        return self.output


def render_output(
    plan: OutputPlan, folders: Folders, faults: SoundtrackFaults | None = None
) -> Rendered:
    """Render ``plan`` (its ``output`` is None when the node writes nothing)."""
    if plan.media is None:
        return Rendered(None)
    base = folders.temp if plan.temp else folders.output
    kind = "temp" if plan.temp else "output"
    prefix = plan.filename_prefix
    if plan.temp:
        prefix += "_" + "".join(random.choices(string.ascii_lowercase, k=5))
    subfolder, filename = split_prefix(prefix)
    folder = base / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    counter = next_counter(folder, filename)
    media = plan.media
    result = Rendered(None)
    if isinstance(media, VideoSpec):
        name = f"{filename}_{counter:05}_.mp4"
        start = folders.resolve(media.start_image) if media.start_image else None
        guides = tuple((p, g) for g in media.guides if (p := folders.resolve(g.image)))
        voices = cast_render(media, folders) if media.with_audio else {}
        render_video(media, start, result.stage(folder / name), faults, voices, guides)
        result.output = {"images": [_item(name, subfolder, kind)], "animated": [True]}
    elif isinstance(media, MusicSpec):
        name = f"{filename}_{counter:05}.{media.extension}"
        render_music(media, result.stage(folder / name))
        result.output = {"audio": [_item(name, subfolder, kind)]}
    else:
        name = f"{filename}_{counter:05}_.png"
        references = tuple(p for r in media.references if (p := folders.resolve(r)))
        render_still(media, result.stage(folder / name), references)
        result.output = {"images": [_item(name, subfolder, kind)]}
    return result
