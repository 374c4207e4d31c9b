"""The nightly batch: render every new or changed screenplay in a folder or bucket.

A small state file (OUT/.reelflow/batch-state.json) remembers the content fingerprint of each
screenplay's last good render, so unchanged films are skipped without starting a film run at
all; `force=True` re-runs them anyway, which content caching makes free of GPU work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.film import film
from tasks.errors import ReelflowError
from tasks.runtime.bucket import BucketUnreadable, download, json_objects
from tasks.runtime.files import write_atomic
from tasks.schema.options import FilmOptions

FilmStatus = Literal["rendered", "unchanged", "failed"]


class BatchError(ReelflowError):
    """The nightly batch could not do what it was asked."""


class ScreenplaySourceMissing(BatchError):
    """The folder or bucket to scan for screenplays cannot be read."""


class BatchIncomplete(BatchError):
    """Some films of the batch failed; every other film is rendered and recorded."""


@dataclass(frozen=True)
class ScreenplaySource:
    """One screenplay found by the scan, as a local file (bucket objects are downloaded)."""

    name: str
    path: Path

    def fingerprint(self, options: FilmOptions) -> str:
        """Everything that changes the film: the screenplay's bytes and the options that shape
        it (not where it renders or is stored)."""
        digest = hashlib.sha256(self.path.read_bytes())
        shaping = options.model_dump(mode="json", exclude={"comfyui", "out", "store", "studio"})
        digest.update(json.dumps(shaping, sort_keys=True).encode())
        return digest.hexdigest()


class BatchEntry(BaseModel):
    """One line of the batch summary: the film's length, wall and GPU time, prompts, folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    film: str
    status: FilmStatus
    duration_s: float = 0.0
    render_s: float = 0.0
    gpu_s: float = 0.0
    prompts: int = 0
    folder: str = ""
    dailies: str = Field("", description="A link to the film's dailies page, where one exists.")
    message: str = ""


class BatchSummary(BaseModel):
    """What one batch run did, film by film."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: tuple[BatchEntry, ...]

    @property
    def failed(self) -> list[BatchEntry]:
        return [entry for entry in self.entries if entry.status == "failed"]

    @property
    def prompts(self) -> int:
        return sum(entry.prompts for entry in self.entries)


class RenderedFilm(BaseModel):
    """The state file's memory of a screenplay's last good render."""

    fingerprint: str
    folder: str


class BatchState(BaseModel):
    """Screenplay name -> its last good render; everything else renders on the next batch."""

    films: dict[str, RenderedFilm] = Field(default_factory=dict)

    def is_current(self, name: str, fingerprint: str) -> bool:
        """Rendered from exactly this content, and its film folder is still there."""
        known = self.films.get(name)
        return (
            known is not None and known.fingerprint == fingerprint and Path(known.folder).is_dir()
        )


def state_path(out: Path) -> Path:
    return out / ".reelflow" / "batch-state.json"


def load_state(out: Path) -> BatchState:
    """The saved state; a missing or unreadable file means every film renders (cache-cheap)."""
    path = state_path(out)
    try:
        return BatchState.model_validate_json(path.read_bytes())
    except (FileNotFoundError, ValidationError):
        return BatchState()


def save_state(out: Path, state: BatchState) -> None:
    write_atomic(state_path(out), state.model_dump_json(indent=2).encode())


def local_screenplays(folder: Path) -> list[ScreenplaySource]:
    if not folder.exists() and folder.parent.is_dir():
        # A fresh checkout has no inbox yet: the first night finds it empty instead of failing.
        # Only the last level is made, so a path on a missing mount still fails below.
        with suppress(OSError):
            folder.mkdir(exist_ok=True)
    if not folder.is_dir():
        raise ScreenplaySourceMissing(
            f"{folder} is not a folder: point `folder` at the screenplays (*.json) to render."
        )
    return [ScreenplaySource(path.name, path) for path in sorted(folder.glob("*.json"))]


def bucket_screenplays(uri: str, inbox: Path) -> list[ScreenplaySource]:
    """Download `s3://bucket/prefix/*.json` into the inbox."""
    prefix = urlsplit(uri).path.strip("/")
    sources = []
    try:
        for key in json_objects(uri):
            name = key.removeprefix(f"{prefix}/" if prefix else "")
            source = f"s3://{urlsplit(uri).netloc}/{key}"
            sources.append(ScreenplaySource(name, download(source, inbox / name)))
    except BucketUnreadable as unreadable:
        raise ScreenplaySourceMissing(str(unreadable)) from unreadable
    return sources


async def find_screenplays(where: str, inbox: Path) -> list[ScreenplaySource]:
    """The screenplays directly inside a folder or under an `s3://bucket/prefix`, by name."""
    if where.startswith("s3://"):
        return await asyncio.to_thread(bucket_screenplays, where, inbox)
    return await asyncio.to_thread(local_screenplays, Path(where).expanduser())


async def render_screenplay(source: ScreenplaySource, options: FilmOptions) -> BatchEntry:
    """One film as a subflow; its failure becomes a summary line instead of ending the batch."""
    started = time.monotonic()
    try:
        result = await film(screenplay=str(source.path), options=options)
    # Any one film's failure (bad screenplay, server down, render error) must not stop the rest.
    except Exception as failure:
        message = " ".join(str(failure).split()) or type(failure).__name__
        get_run_logger().error("%s failed: %s", source.name, message)
        return BatchEntry(
            film=source.name,
            status="failed",
            render_s=round(time.monotonic() - started, 2),
            message=message,
        )
    return BatchEntry(
        film=source.name,
        status="rendered",
        duration_s=round(result.duration_s, 2),
        render_s=round(time.monotonic() - started, 2),
        gpu_s=round(result.gpu_seconds, 2),
        prompts=result.prompts,
        folder=result.folder,
        dailies=result.shared.review or "",
    )


async def publish_summary(summary: BatchSummary) -> None:
    rows = [
        {
            **entry.model_dump(exclude={"folder", "dailies"}),
            # A link that opens from the UI, else the folder on the worker, as text.
            "dailies": entry.dailies or entry.folder,
        }
        for entry in summary.entries
    ]
    failed = len(summary.failed)
    await acreate_table_artifact(
        key="nightly-batch",
        table=rows,
        description=f"{len(rows)} screenplay(s), {failed} failed, {summary.prompts} prompt(s)",
    )


@flow(name="nightly-batch", log_prints=False)
async def nightly_batch(
    folder: str = "screenplays",
    options: FilmOptions = FilmOptions(),  # noqa: B008
    force: bool = False,
) -> BatchSummary:
    """Render every new or changed screenplay in a folder or bucket; skip the unchanged ones.

    Args:
        folder: Folder (on the worker) or s3://bucket/prefix holding the screenplays (*.json).
        options: The film options every screenplay renders with (servers, store, mode, ...);
            the batch's memory of what it rendered lives in OUT/.reelflow/batch-state.json.
        force: Re-run unchanged films too (cached renders make this cost no GPU time).
    """
    root = Path(options.out)
    sources = await find_screenplays(folder, root / ".reelflow" / "batch" / "inbox")
    logger = get_run_logger()
    where = folder if folder.startswith("s3://") else str(Path(folder).expanduser().resolve())
    logger.info("found %d screenplay(s) in %s", len(sources), where)
    if not sources:
        logger.warning(
            "%s holds no screenplays (*.json): nothing to render. Put screenplays there, or "
            "set the deployment's `folder` parameter.",
            where,
        )
    state = load_state(root)
    entries: list[BatchEntry] = []
    for source in sources:
        fingerprint = source.fingerprint(options)
        if not force and state.is_current(source.name, fingerprint):
            known = state.films[source.name]
            entries.append(BatchEntry(film=source.name, status="unchanged", folder=known.folder))
            continue
        entry = await render_screenplay(source, options)
        if entry.status == "rendered":
            state.films[source.name] = RenderedFilm(fingerprint=fingerprint, folder=entry.folder)
            # Saved after every film, so a killed batch does not redo the films it finished.
            save_state(root, state)
        entries.append(entry)
    summary = BatchSummary(entries=tuple(entries))
    await publish_summary(summary)
    if summary.failed:
        names = ", ".join(entry.film for entry in summary.failed)
        raise BatchIncomplete(
            f"{len(summary.failed)} of {len(entries)} screenplay(s) failed ({names}); the "
            "summary artifact 'nightly-batch' has each message. The others are rendered."
        )
    return summary
