"""The dialogue check task: hear a rendered sequence and judge each scripted line."""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import task

from tasks import media
from tasks.cast.voice import embed, reference_embedding, similarity
from tasks.dialogue.judge import check_sequence, is_silent, judge_voices
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.truncation import segment_levels
from tasks.media.encode import AUDIO_RATE
from tasks.runtime.caching import content_key, keyed_by
from tasks.runtime.studio import Studio
from tasks.runtime.workers import off_the_critical_path
from tasks.schema.film_plan import FilmPlan, Sequence
from tasks.schema.outcomes import RenderedSequence
from tasks.schema.refs import MediaRef
from tasks.schema.verdicts import ScriptedLine, SequenceVerdict


def scripted_lines(sequence: Sequence) -> list[ScriptedLine]:
    """The sequence's lines, each tagged with the segment (scene part) that speaks it."""
    segment_of = {
        seg.scene_index: number for number, seg in enumerate(sequence.segments) if seg.part == 0
    }
    return [
        ScriptedLine(segment=segment_of[line.scene_index], character=line.character, line=line.line)
        for line in sequence.lines
    ]


def segment_spans(sequence: Sequence) -> list[tuple[float, float]]:
    spans, offset = [], 0
    for segment in sequence.segments:
        spans.append((offset / sequence.fps, (offset + segment.frames) / sequence.fps))
        offset += segment.frames
    return spans


def sequence_voices(studio: Studio, sequence: Sequence) -> dict[str, MediaRef]:
    """The reference voices of the cast members who speak in the sequence."""
    speaking = {line.character for line in sequence.lines}
    return {name: ref for name, ref in studio.cast.voices().items() if name in speaking}


def _check_key(parameters: dict[str, Any]) -> str:
    sequence: Sequence = parameters["sequence"]
    document = {
        "video": parameters["rendered"].video,
        "lines": sequence.lines,
        "segments": segment_spans(sequence),
        "prompts": sequence.segment_prompts,
        "title": parameters["plan"].title,
        "attempt": parameters["attempt"],
        "policy": parameters["policy"],
        "asr": parameters["studio"].transcriber_name,
    }
    # Only a sequence with a cast speaking is judged by voice: every other key stays as it was.
    if voices := sequence_voices(parameters["studio"], sequence):
        document |= {"voices": voices, "speaker": sequence.voice_of}
    return content_key("dialogue", document)


@task(
    name="check-dialogue",
    task_run_name="check-dialogue-seq{sequence.index}",
    cache_policy=keyed_by(_check_key),
    persist_result=True,
    result_serializer="json",
)
async def check_dialogue(
    studio: Studio,
    plan: FilmPlan,
    sequence: Sequence,
    rendered: RenderedSequence,
    attempt: int,
    policy: DialoguePolicy,
) -> SequenceVerdict:
    """Transcribe the sequence and judge each scripted line (and any unscripted speech)."""
    video = await studio.store.fetch(rendered.video)
    samples = await off_the_critical_path(media.read_audio, video, rate=AUDIO_RATE)
    silent = is_silent(samples, AUDIO_RATE, threshold_lufs=policy.silence_lufs)
    transcript = await off_the_critical_path(studio.transcriber.transcribe, video)
    verdict = check_sequence(
        scripted_lines(sequence),
        transcript,
        silent=silent,
        scene_descriptions=list(sequence.segment_prompts),
        title=plan.title,
        segment_spans=segment_spans(sequence),
        attempt=attempt,
        policy=policy,
        segment_levels=segment_levels(samples, AUDIO_RATE, segment_spans(sequence)),
    )
    voices = sequence_voices(studio, sequence)
    if not voices or silent:
        return verdict
    references = {
        name: await off_the_critical_path(
            reference_embedding, ref.sha256, await studio.store.fetch(ref)
        )
        for name, ref in voices.items()
    }
    similarities = await off_the_critical_path(
        voice_similarities, verdict, samples, references, policy.min_voice_s
    )
    return judge_voices(verdict, similarities, sequence.voice_of, attempt, policy)


def voice_similarities(
    verdict: SequenceVerdict,
    samples: np.ndarray,
    references: dict[str, np.ndarray],
    shortest_s: float,
) -> dict[int, float]:
    """Each line's similarity to its character's reference voice, from its heard span (48 kHz
    samples of the sequence); lines shorter than `shortest_s` are too short to tell."""
    found = {}
    for number, line in enumerate(verdict.lines):
        reference, span = references.get(line.character), line.span
        if reference is None or span is None or span.end - span.start < shortest_s:
            continue
        clip = samples[int(span.start * AUDIO_RATE) : int(span.end * AUDIO_RATE)]
        found[number] = similarity(embed(clip, AUDIO_RATE), reference)
    return found
