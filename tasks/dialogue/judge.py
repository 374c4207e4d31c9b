"""The dialogue check: compare what a rendered sequence says with what the script says.

Pure functions over a `Transcript` and measured samples: no files, no network. The
verdicts are pydantic models so the flow can record them and the report can show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from tasks.dialogue.align import Heard, align, heard_tokens, span_of, text_of
from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.text_norm import STOPWORDS, normalize_text
from tasks.dialogue.truncation import SegmentLevels, heard_through, sound_similarity, was_cut
from tasks.media import integrated_loudness
from tasks.plan.lint import required_seconds
from tasks.runtime.asr import Transcript
from tasks.schema.verdicts import (
    Action,
    CutEvidence,
    LineVerdict,
    RerenderAdvice,
    ScriptedLine,
    SequenceVerdict,
    SpeechVerdict,
    TimeRange,
    VerdictKind,
)

# Worst first: the sequence's kind is the worst of its verdicts, its action the strongest.
_KIND_ORDER: tuple[VerdictKind, ...] = (
    "mismatch", "missing", "truncated", "wrong_voice", "word_salad", "title_leak", "misheard",
    "narration", "silent", "unchecked", "ok",
)  # fmt: skip
_ACTION_ORDER: tuple[Action, ...] = (
    "rerender", "mute_sequence", "mute_range", "keep_with_warning", "keep"
)  # fmt: skip


def unchecked() -> SequenceVerdict:
    """The verdict of a sequence nobody listened to (the check is switched off)."""
    return SequenceVerdict(kind="unchecked", action="keep", silent=False, heard="")


def is_silent(samples: np.ndarray, rate: int, *, threshold_lufs: float = -50.0) -> bool:
    """True when the audio is quieter than `threshold_lufs`, whatever an ASR claims to hear."""
    return integrated_loudness(samples, rate) < threshold_lufs


def check_sequence(
    scripted: list[ScriptedLine],
    transcript: Transcript,
    *,
    silent: bool,
    scene_descriptions: list[str],
    title: str,
    segment_spans: list[tuple[float, float]],
    attempt: int = 1,
    policy: DialoguePolicy | None = None,
    segment_levels: list[SegmentLevels] | None = None,
) -> SequenceVerdict:
    """Judge one rendered sequence; `attempt` counts its renders so far, this one included.

    `segment_levels` (from `tasks.truncation.segment_levels` on the sequence's samples) let
    the sound at each segment's end decide whether a line was cut; without them the heard
    words' times and endings decide alone.
    """
    policy = policy or DialoguePolicy()
    for line in scripted:
        if line.segment >= len(segment_spans):
            raise ValueError(f"line {line.line!r} is in segment {line.segment}, which has no span")
    if segment_levels is not None and len(segment_levels) != len(segment_spans):
        raise ValueError(
            f"{len(segment_levels)} segment levels for {len(segment_spans)} segments: measure "
            "the levels over the same spans"
        )
    heard = [] if silent else heard_tokens(transcript)
    script_tokens = [t for line in scripted for t in normalize_text(line.line)]
    leak, heard = _split_title_leak(heard, title, script_tokens, policy)
    speech: list[SpeechVerdict] = [leak] if leak else []
    lines: list[LineVerdict] = []
    if scripted:
        aligned, extras = align(scripted, heard, segment_spans)
        levels = segment_levels or [None] * len(segment_spans)
        lines = [
            _judge_line(line, owned, segment_spans[line.segment], levels[line.segment], policy)
            for line, owned in zip(scripted, aligned, strict=True)
        ]
        unscripted = [_judge_unscripted(e, scene_descriptions, policy, True) for e in extras]
    else:
        unscripted = [_judge_unscripted(heard, scene_descriptions, policy, False)] if heard else []
    speech += [s for s in unscripted if s is not None]
    return _summarise(lines, speech, silent, transcript, scripted, segment_spans, attempt, policy)


def _split_title_leak(
    heard: list[Heard], title: str, script_tokens: list[str], policy: DialoguePolicy
) -> tuple[SpeechVerdict | None, list[Heard]]:
    """Find the title or title-card phrases spoken at the very start, and take them out."""
    script = " ".join(script_tokens)
    phrases = [normalize_text(p) for p in [title, *policy.title_card_phrases]]
    # A phrase the script itself speaks is dialogue, not a leak.
    phrases = [p for p in phrases if p and f" {' '.join(p)} " not in f" {script} "]
    early = [i for i, h in enumerate(heard) if h.start <= policy.title_window_s]
    hits: list[tuple[int, int]] = []
    for phrase in phrases:
        target = " ".join(phrase)
        # Whisper may split or merge a word of the phrase, so windows one word either side.
        windows = [
            (fuzz.ratio(" ".join(h.token for h in heard[i : i + size]), target), i, i + size)
            for size in {max(1, len(phrase) - 1), len(phrase), len(phrase) + 1}
            for i in early
            if i + size <= len(heard)
        ]
        score, first, last = max(windows, default=(0.0, 0, 0))
        if score >= policy.title_match_ratio:
            hits.append((first, last))
    if not hits:
        return None, heard
    first, last = min(a for a, _ in hits), max(b for _, b in hits)
    leaked = heard[first:last]
    span = span_of(leaked)
    verdict = SpeechVerdict(
        kind="title_leak", heard=text_of(leaked), span=span, action=policy.on_title_leak
    )
    return verdict, heard[:first] + heard[last:]


def _judge_line(
    line: ScriptedLine,
    heard: list[Heard],
    span: tuple[float, float],
    levels: SegmentLevels | None,
    policy: DialoguePolicy,
) -> LineVerdict:
    expected = normalize_text(line.line)
    tokens = [h.token for h in heard]
    wer = Levenshtein.distance(expected, tokens) / len(expected)
    kind: VerdictKind
    cut, missing = None, []
    if not heard:
        kind, action = "missing", policy.on_missing
    else:
        reached, _ = heard_through(expected, tokens)
        missing = expected[reached:]
        cut = CutEvidence(
            gap_s=round(span[1] - heard[-1].end, 3),
            speech_at_end=levels.speech_at_end(policy.cut_level_share) if levels else None,
            tail_heard=not missing,
        )
        if was_cut(
            cut, running_margin_s=policy.running_margin_s, lost_margin_s=policy.cut_margin_s
        ):
            kind, action = "truncated", policy.on_truncated
        elif wer <= policy.max_ok_wer:
            kind, action, missing = "ok", "keep", []
        elif (
            wer <= policy.max_misheard_wer
            or sound_similarity(expected, tokens) >= policy.misheard_sound_similarity
        ):
            kind, action, missing = "misheard", policy.on_misheard, []
        else:
            kind, action, missing = "mismatch", policy.on_mismatch, []
    return LineVerdict(
        segment=line.segment, character=line.character, kind=kind, expected=line.line,
        heard=text_of(heard), wer=round(wer, 3), missing_words=missing,
        span=span_of(heard) if heard else None, cut=cut, action=action,
    )  # fmt: skip


def _judge_unscripted(
    heard: list[Heard], descriptions: list[str], policy: DialoguePolicy, has_dialogue: bool
) -> SpeechVerdict | None:
    if len({h.word for h in heard}) < policy.min_unscripted_words:
        return None  # Whisper's "You." on room tone is not speech worth acting on.
    scene_words = {t for d in descriptions for t in normalize_text(d) if t not in STOPWORDS}
    content = [h.token for h in heard if h.token not in STOPWORDS]
    found = [t for t in content if any(_same_word(t, s, policy) for s in scene_words)]
    overlap = len(found) / len(content) if content else 0.0
    span = span_of(heard)
    if overlap >= policy.narration_min_overlap:
        kind: Literal["narration", "word_salad"] = "narration"
        action = policy.on_narration
    else:
        kind, action = "word_salad", policy.on_word_salad
        # Muting a whole dialogue sequence would take its lines with it: mute the salad only.
        if has_dialogue and action == "mute_sequence":
            action = "mute_range"
    return SpeechVerdict(
        kind=kind, heard=text_of(heard), overlap=round(overlap, 3), span=span, action=action
    )


def _same_word(a: str, b: str, policy: DialoguePolicy) -> bool:
    if a == b:
        return True
    # Short words differ by one letter too easily; "wave"/"waves" is worth a match.
    return min(len(a), len(b)) >= 4 and fuzz.ratio(a, b) >= policy.scene_word_ratio


def _summarise(
    lines: list[LineVerdict],
    speech: list[SpeechVerdict],
    silent: bool,
    transcript: Transcript,
    scripted: list[ScriptedLine],
    spans: list[tuple[float, float]],
    attempt: int,
    policy: DialoguePolicy,
) -> SequenceVerdict:
    kinds: list[VerdictKind] = [v.kind for v in lines] + [s.kind for s in speech]
    if not scripted and silent:
        kinds.append("silent")
    kind: VerdictKind = min(kinds, key=_KIND_ORDER.index) if kinds else "ok"
    actions: list[Action] = [v.action for v in lines] + [s.action for s in speech]
    action: Action = min(actions, key=_ACTION_ORDER.index) if actions else "keep"
    warnings: list[str] = []
    rerender = None
    if action == "rerender":
        if attempt >= policy.max_attempts:
            action = "keep_with_warning"
            warnings.append(
                f"kept after {attempt} renders although the dialogue check found {kind}"
            )
        else:
            rerender = RerenderAdvice(attempt=attempt + 1, segment_seconds=_longer(
                lines, scripted, spans, policy
            ))  # fmt: skip
    mute = [
        TimeRange(
            start=max(0.0, s.span.start - policy.mute_pad_s), end=s.span.end + policy.mute_pad_s
        )
        for s in speech
        if s.action == "mute_range"
    ]
    if action == "mute_sequence":
        mute = []
    return SequenceVerdict(
        kind=kind, action=action, silent=silent, heard="" if silent else transcript.text,
        lines=lines, speech=speech, mute_ranges=mute, rerender=rerender, warnings=warnings,
    )  # fmt: skip


def _longer(
    lines: list[LineVerdict],
    scripted: list[ScriptedLine],
    spans: list[tuple[float, float]],
    policy: DialoguePolicy,
) -> dict[int, float]:
    """Segments to lengthen: a cut line's by the duration rule or its length, plus a margin;
    a missing or mismatched line's up to the duration rule where it has less room than that."""
    seconds: dict[int, float] = {}
    for verdict, line in zip(lines, scripted, strict=True):
        start, end = spans[line.segment]
        rule = required_seconds(line.line, policy.duration_rule)
        if verdict.kind == "truncated":
            needed = max(rule, end - start) + policy.retry_margin_s
        elif verdict.kind in ("missing", "mismatch") and end - start < rule:
            needed = rule
        else:
            continue
        seconds[line.segment] = max(seconds.get(line.segment, 0.0), round(needed, 2))
    return seconds


def judge_voices(
    verdict: SequenceVerdict,
    similarities: Mapping[int, float],
    speaker: str | None,
    attempt: int,
    policy: DialoguePolicy,
) -> SequenceVerdict:
    """The verdict with each line's voice similarity (`similarities`: line number -> similarity
    to its character's reference; lines too short to judge are absent).

    Only the sequence's `speaker` (the dominant speaker, whose reference voice the render was
    given) can be re-rendered into their voice: a line of theirs below the threshold is
    `wrong_voice` and asks for a new seed; anyone else's low similarity is a warning.
    """
    lines, warnings = list(verdict.lines), list(verdict.warnings)
    wrong = False
    for number, line in enumerate(lines):
        found = similarities.get(number)
        if found is None:
            continue
        line = line.model_copy(update={"voice_similarity": round(found, 3)})
        if found < policy.voice_threshold:
            if line.character == speaker and line.kind in ("ok", "misheard"):
                line = line.model_copy(
                    update={"kind": "wrong_voice", "action": policy.on_wrong_voice}
                )
                wrong = True
            elif line.character != speaker:
                warnings.append(
                    f"{line.character}'s voice is not their reference ({found:.2f}): one "
                    f"reference voice per render, and this sequence speaks in {speaker}'s"
                )
        lines[number] = line
    update: dict[str, object] = {"lines": lines, "warnings": warnings}
    if wrong:
        update["kind"] = min([verdict.kind, "wrong_voice"], key=_KIND_ORDER.index)
        if verdict.action != "rerender" and policy.on_wrong_voice == "rerender":
            if attempt >= policy.max_attempts:
                update["action"] = "keep_with_warning"
                warnings.append(
                    f"kept after {attempt} renders although {speaker}'s voice is not theirs"
                )
            else:
                update["action"] = "rerender"
                update["rerender"] = RerenderAdvice(attempt=attempt + 1)
    return verdict.model_copy(update=update)
