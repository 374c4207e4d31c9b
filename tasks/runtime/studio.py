"""The services one film run renders with: store, servers, GPU slots, templates, models.

None of this is part of any cache key: the same film rendered on another server, into
another scratch folder, or by another run hits the same cache entries.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from prefect import Task
from prefect.cache_policies import CachePolicy
from prefect.filesystems import WritableFileSystem

from blocks.comfyui import ComfyUIServer
from tasks.comfyui.errors import OutputInvalid, PromptRejected, TransientError
from tasks.comfyui.models import ModelSet
from tasks.comfyui.preflight import rejected_at
from tasks.comfyui.protocol import ProgressEvent
from tasks.comfyui.workflow import TemplateKind, Workflow
from tasks.comfyui.workflow_sources import choose_templates
from tasks.runtime.asr import EmbeddedTranscriber, Transcriber
from tasks.runtime.cache_check import MediaChecked
from tasks.runtime.locks import FlockLockManager
from tasks.runtime.schedule.policy import policy_from_environment
from tasks.runtime.schedule.scheduler import GpuScheduler
from tasks.runtime.slots import GpuSlots
from tasks.runtime.store import MediaStore
from tasks.runtime.submissions import Submission, SubmissionJournal, prompt_digest
from tasks.runtime.workers import LANES, Acceptances
from tasks.schema.options import FilmOptions
from tasks.schema.outcomes import Cast, RenderedCue, SequenceResult
from tasks.schema.refs import MediaRef
from tasks.schema.schedule import SCORE_FAMILY, Family

T = TypeVar("T", bound=Task[Any, Any])


class ProgressSink(Protocol):
    """Where a run reports what it does as it goes (a terminal, the Prefect run, or nothing)."""

    def stage(self, text: str) -> None:
        """A stage begins ("rendering 7 sequences in 3 chains")."""

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        """A render's own progress, step by step, from the server."""

    def render_done(self, label: str, detail: str) -> None:
        """A render came back."""

    def outcome(self, text: str, *, warning: bool = False) -> None:
        """One stage outcome in the film's words ("sequence 3: misheard, kept with a warning")."""

    def sequence_finished(self, result: SequenceResult) -> None:
        """A sequence is ready for the cut: rendered, heard and normalized."""

    def cue_finished(self, cue: RenderedCue) -> None:
        """A score cue is rendered."""


class QuietSink:
    """Reports nothing."""

    def stage(self, text: str) -> None:
        return None

    def render_progress(self, label: str, value: int, maximum: int) -> None:
        return None

    def render_done(self, label: str, detail: str) -> None:
        return None

    def outcome(self, text: str, *, warning: bool = False) -> None:
        return None

    def sequence_finished(self, result: SequenceResult) -> None:
        return None

    def cue_finished(self, cue: RenderedCue) -> None:
        return None


@dataclass
class RunStats:
    """What this run cost on the GPU, for the end report and the benchmarks."""

    prompts: int = 0
    gpu_seconds: float = 0.0
    queue_seconds: float = 0.0
    fresh_sequences: set[int] = field(default_factory=set)
    per_server: dict[str, int] = field(default_factory=dict)
    # The score's own share: its cues render beside the chains, so a stage cannot be told by
    # when its GPU time was spent.
    score_prompts: int = 0
    score_gpu_seconds: float = 0.0


EMBEDDED_SIMULATOR = "embedded simulator"


class StageTimer:
    """Wall time per stage, for the manifest and the end report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started


@dataclass
class Studio:
    """Everything one film run works with: its services, its options, and what it cost.

    `options` and `screenplay` are the run's own; none of this is part of any cache key.
    """

    store: MediaStore
    results: WritableFileSystem
    cache_locks: Path
    servers: Sequence[ComfyUIServer]
    slots: GpuSlots
    models: ModelSet
    templates: dict[TemplateKind, Workflow]
    transcriber: Transcriber = field(default_factory=EmbeddedTranscriber)
    transcriber_name: str = "embedded:whisper-tiny.en"
    events: ProgressSink = field(default_factory=QuietSink)
    stats: RunStats = field(default_factory=RunStats)
    scheduler: GpuScheduler = field(default_factory=lambda: GpuScheduler(policy_from_environment()))
    options: FilmOptions = field(default_factory=FilmOptions)
    screenplay: Path = Path("screenplay.json")
    animatic: bool = False
    cast: Cast = field(default_factory=Cast)
    timer: StageTimer = field(default_factory=StageTimer)
    acceptances: Acceptances = field(default_factory=Acceptances)
    # Work a stage started ahead of its turn, withdrawn when the run ends before using it
    # (a gate stopped the run, a chain failed): called once, as the run closes.
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def server_name(self, url: str) -> str:
        """How reports name a server: its URL, or what the run's own simulator is."""
        return EMBEDDED_SIMULATOR if self.animatic else url

    def bind(self, task: T) -> T:
        """The task with its results persisted next to this studio's media (cache included).

        Serializable isolation: two runs that want the same render at once wait for each
        other's result instead of both rendering it (file locks: one host; several hosts
        sharing a bucket need a shared lock manager such as prefect-redis). A killed run's
        locks die with it. A cached result is used only while its media are intact.
        """
        policy = task.cache_policy
        if isinstance(policy, CachePolicy):
            policy = policy.configure(
                isolation_level="SERIALIZABLE",
                lock_manager=FlockLockManager(self.cache_locks),
            )
        bound = task.with_options(result_storage=self.results, cache_policy=policy)
        # Called exactly as the task; a cache hit naming missing or damaged media re-runs it.
        return cast(T, MediaChecked(bound, self))

    @classmethod
    def templates_for(
        cls, *layers: Mapping[TemplateKind, Workflow]
    ) -> dict[TemplateKind, Workflow]:
        """Each kind from the first of ``layers`` that has it (the run's own exports, by
        precedence), else the built-in template; every one checked for its titles."""
        return choose_templates(layers)


@dataclass(frozen=True)
class GpuResult:
    """The local files one prompt produced, and where and how long it ran."""

    files: list[Path]
    server: str
    gpu_seconds: float
    prompt_id: str


def upload_name(ref: MediaRef) -> str:
    """Uploads are named by content, so the prompt itself is content-addressed."""
    return f"reelflow_{ref.sha256[:32]}{ref.suffix}"


async def run_on_gpu(
    studio: Studio,
    prompt: dict[str, Any],
    *,
    uploads: Sequence[MediaRef],
    label: str,
    family: Family,
    output_s: float,
    after_s: float = 0.0,
    chain: int | None = None,
) -> GpuResult:
    """Take the GPU slot the scheduler grants, upload inputs, run the prompt, download outputs.

    `family` is the model the prompt needs and `output_s` the seconds of media it makes:
    the scheduler keeps each server on one model family where that costs no time; `after_s`,
    the seconds its chain renders after it, puts the longest chains first, and the slot it
    frees waits a moment for `chain`'s next render (its carried frame). A prompt
    an earlier (killed) run already sent is picked up on its server instead of sent again.
    From its slot request to its downloads, post work keeps to fewer lanes (`workers.Lanes`).
    """
    journal = SubmissionJournal(studio.cache_locks.parent / "submissions")
    digest = prompt_digest(prompt)
    earlier = await asyncio.to_thread(journal.find, digest)
    if earlier is not None and (resumed := await _pick_up(studio, earlier, label)) is not None:
        return resumed
    local_inputs = [await studio.store.fetch(ref) for ref in uploads]
    async with (
        LANES.feeding(),
        studio.scheduler.hold(
            studio.slots, studio.servers, family, output_s, after_s, chain
        ) as grant,
        grant.slot.server.client() as client,
    ):
        slot = grant.slot
        for ref, path in zip(uploads, local_inputs, strict=True):
            await client.upload_file(path, name=upload_name(ref))
        sent = await asyncio.to_thread(
            journal.record, slot.server.url, str(uuid.uuid4()), uuid.uuid4().hex, digest
        )
        started = time.monotonic()
        name = slot.server.concurrency_limit_name

        def submitted(_: str) -> None:
            # Counted when the server accepts it: a retried or failed attempt is a prompt too.
            studio.stats.prompts += 1
            studio.stats.per_server[name] = studio.stats.per_server.get(name, 0) + 1
            studio.stats.score_prompts += family == SCORE_FAMILY
            studio.acceptances.arrived(label)

        def progress(event: ProgressEvent) -> None:
            studio.events.render_progress(label, event.value, event.max)

        try:
            entry = await client.run(
                prompt,
                on_progress=progress,
                prompt_id=sent.prompt_id,
                client_id=sent.client_id,
                on_submitted=submitted,
            )
        except PromptRejected as rejected:  # preflight passed: say which stage, and what next
            raise rejected_at(label, slot.server.url, rejected) from rejected
        # GPU time is what the server reports it spent executing (time queued behind another
        # prompt is not GPU time); a server that reports nothing is timed from here.
        busy = entry.execution_seconds
        if busy is None:
            busy = time.monotonic() - started
        studio.stats.queue_seconds += entry.queue_seconds or 0.0
        grant.ran(busy)
        studio.stats.gpu_seconds += busy
        studio.stats.score_gpu_seconds += busy if family == SCORE_FAMILY else 0.0
        downloads = studio.store.scratch / "downloads" / entry.prompt_id
        files = [await client.download(output, downloads) for output in entry.outputs_files()]
    return GpuResult(
        files=files,
        server=studio.server_name(slot.server.url),
        gpu_seconds=busy,
        prompt_id=entry.prompt_id,
    )


async def _pick_up(studio: Studio, earlier: Submission, label: str) -> GpuResult | None:
    """The outputs of a prompt an earlier run sent, once it finished on its server; None when
    the server no longer has it (then it is sent again)."""
    server = next((s for s in studio.servers if s.url == earlier.server), None)
    if server is None:
        return None

    def progress(event: ProgressEvent) -> None:
        studio.events.render_progress(label, event.value, event.max)

    async with server.client() as client:
        entry = await client.resume(earlier.prompt_id, earlier.client_id, on_progress=progress)
        if entry is None:
            return None
        downloads = studio.store.scratch / "downloads" / entry.prompt_id
        try:
            files = [await client.download(output, downloads) for output in entry.outputs_files()]
        except OutputInvalid:  # its outputs were cleaned up on the server: render it again
            return None
    studio.events.stage(
        f"{label}: picked up the prompt an earlier run left on {server.url}; not rendered again"
    )
    return GpuResult(
        files=files,
        server=studio.server_name(server.url),
        gpu_seconds=entry.execution_seconds or 0.0,
        prompt_id=entry.prompt_id,
    )


class CorruptRender(TransientError):
    """The server returned media that does not match what was asked for."""


def single_output(files: list[Path], suffix: str, what: str) -> Path:
    matching = [path for path in files if path.suffix.lower() == suffix]
    if len(matching) != 1:
        raise CorruptRender(
            f"{what}: expected one {suffix} output, the server gave {[path.name for path in files]}"
        )
    return matching[0]
