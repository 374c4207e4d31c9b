"""When re-rendering stops helping: a re-render that sounds as the render before it did.

A new seed that brings back the same words at the same times (or the very same file) will
be heard the same way again; a further render spends GPU time and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from tasks.dialogue.policy import DialoguePolicy
from tasks.dialogue.text_norm import normalize_text
from tasks.schema.verdicts import SequenceVerdict


class HeardRender(BaseModel):
    """One render of a sequence as the dialogue check heard it."""

    media_sha256: str = Field(description="the rendered file's hash")
    verdict: SequenceVerdict


def same_audio(previous: HeardRender, current: HeardRender, tolerance_s: float) -> bool:
    """True when two renders sound alike to the check: the same file, or the same words heard
    with every line and every unscripted stretch within `tolerance_s` of where it was."""
    if previous.media_sha256 == current.media_sha256:
        return True
    before, after = previous.verdict, current.verdict
    if normalize_text(before.heard) != normalize_text(after.heard):
        return False
    spans_before = [v.span for v in before.lines] + [v.span for v in before.speech]
    spans_after = [v.span for v in after.lines] + [v.span for v in after.speech]
    return len(spans_before) == len(spans_after) and all(
        (a is None and b is None)
        or (
            a is not None
            and b is not None
            and abs(a.start - b.start) <= tolerance_s
            and abs(a.end - b.end) <= tolerance_s
        )
        for a, b in zip(spans_before, spans_after, strict=True)
    )


def stop_repeats(renders: Sequence[HeardRender], policy: DialoguePolicy) -> SequenceVerdict:
    """The last render's verdict, its re-render withdrawn when it sounds as the render before
    it did: another render would be heard the same way and spend GPU time for nothing."""
    current = renders[-1].verdict
    if (
        current.action != "rerender"
        or len(renders) < 2
        or not same_audio(renders[-2], renders[-1], policy.same_audio_tolerance_s)
    ):
        return current
    warning = (
        f"kept after {len(renders)} renders although the dialogue check found {current.kind}: "
        "the last re-render sounded the same as the render before it"
    )
    return current.model_copy(
        update={
            "action": "keep_with_warning",
            "rerender": None,
            "warnings": [*current.warnings, warning],
        }
    )
