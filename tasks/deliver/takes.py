"""Every take of every sequence, in the film folder, so that a person can compare them.

<folder>/takes/seqNNN_takeK_<hash>.mp4        the take as rendered (before dialogue edits)
<folder>/takes/seqNNN_takeK_<hash>_last.png   its last frame: where takes differ most
<folder>/takes/takes.png                      every take's last frame, labelled with its score

A file is named by its content's hash as well, so a re-rolled take never hides behind an old
file of the same name; files of takes no longer in the film are removed.
Written at the takes gate (for the director) and before the dailies page, which plays them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence as Seq
from pathlib import Path

from tasks import media
from tasks.runtime.files import copy_atomic
from tasks.runtime.studio import Studio
from tasks.schema.outcomes import SequenceResult, Take

TAKES_FOLDER = "takes"
SHEET = "takes.png"


def take_video(sequence: int, take: Take) -> str:
    """A take's file, relative to the film folder."""
    return f"{TAKES_FOLDER}/seq{sequence:03d}_take{take.take}_{take.video.sha256[:12]}.mp4"


def take_frame(sequence: int, take: Take) -> str:
    """A take's last frame, relative to the film folder."""
    return take_video(sequence, take).removesuffix(".mp4") + "_last.png"


def take_label(result: SequenceResult, take: Take) -> str:
    """`seq 2 take 1 · 0.81 kept`, as on the takes sheet."""
    kept = " kept" if take.take == result.kept_take else ""
    return f"seq {result.sequence.index} take {take.take} · {take.score.total:.2f}{kept}"


async def write_takes(studio: Studio, results: Seq[SequenceResult], folder: Path) -> Path | None:
    """Copy every take (and its last frame) into `folder/takes/`; return the labelled sheet of
    last frames, or None when no sequence was rendered in several takes."""
    frames: list[tuple[Path, str]] = []
    written: set[Path] = set()
    for result in results:
        for take in result.takes:
            n = result.sequence.index
            video, last = folder / take_video(n, take), folder / take_frame(n, take)
            if not video.exists():
                local = await studio.store.fetch(take.video)
                await asyncio.to_thread(copy_atomic, local, video)
            if not last.exists():
                await asyncio.to_thread(_last_frame, video, last, studio.store.scratch)
            frames.append((last, take_label(result, take)))
            written |= {video, last}
    for old in (folder / TAKES_FOLDER).glob("seq*") if written else ():
        if old not in written:
            old.unlink()
    if not frames:
        return None
    sheet = folder / TAKES_FOLDER / SHEET
    return await asyncio.to_thread(media.contact_sheet, frames, sheet)


def _last_frame(video: Path, dest: Path, scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    media.clip_thumbnails(video, scratch / f"{dest.stem}.first.png", dest)
