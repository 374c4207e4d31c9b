"""The cast in the film folder: each member's portrait and voice reference, and how close every
spoken line came to its voice."""

from __future__ import annotations

import asyncio

from tasks.runtime.files import copy_atomic, write_atomic
from tasks.runtime.studio import Studio
from tasks.schema.outcomes import Deliverables, Footage
from tasks.schema.record import CastEntry, VoiceEntry


async def deliver_cast(studio: Studio, footage: Footage, delivered: Deliverables) -> Deliverables:
    """`cast/NAME.png` and `cast/NAME.wav` in the folder, and the cast and every line's voice
    similarity in the record (manifest.json is written again with them)."""
    if not studio.cast.members:
        return delivered
    folder, entries = delivered.folder, []
    for casting in studio.cast.members:
        files: dict[str, str | None] = {"portrait": None, "voice": None}
        for kind, ref in (("portrait", casting.portrait), ("voice", casting.voice)):
            if ref is not None:
                target = folder / "cast" / f"{_safe(casting.name)}{ref.suffix}"
                await asyncio.to_thread(copy_atomic, await studio.store.fetch(ref), target)
                files[kind] = target.relative_to(folder).as_posix()
        entries.append(
            CastEntry(
                name=casting.name,
                portrait=files["portrait"],
                portrait_origin=casting.portrait_origin,
                voice=files["voice"],
                voice_origin=casting.voice_origin,
                audition=casting.audition,
            )
        )
    voices = [
        VoiceEntry(
            sequence=result.sequence.index,
            character=line.character,
            line=line.expected,
            voice_similarity=line.voice_similarity,
            verdict=line.kind,
        )
        for result in footage.sequences
        for line in result.attempts[-1].verdict.lines
        if studio.cast.of(line.character) is not None
    ]
    record = delivered.record.model_copy(update={"cast": entries, "voices": voices})
    await asyncio.to_thread(
        write_atomic, delivered.manifest, record.model_dump_json(indent=2).encode()
    )
    return delivered.model_copy(update={"record": record})


def _safe(name: str) -> str:
    """A character's name as a file name (any script; no path separators or control codes)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "character"
