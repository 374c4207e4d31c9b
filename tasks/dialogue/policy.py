"""What the dialogue check may do about each verdict, and the thresholds that decide them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tasks.cast.voice import SAME_VOICE_THRESHOLD
from tasks.plan.defaults import PlanRules, load_defaults
from tasks.schema.verdicts import (
    Action,
)


def _plan_rules() -> PlanRules:
    return load_defaults().plan


class DialoguePolicy(BaseModel):
    """What to do about each verdict, and the thresholds that decide them."""

    on_truncated: Action = "rerender"
    on_mismatch: Action = "rerender"
    on_misheard: Action = "keep_with_warning"
    on_missing: Action = "rerender"
    on_word_salad: Action = "mute_sequence"
    on_title_leak: Action = "mute_range"
    on_narration: Action = "keep"
    on_wrong_voice: Action = "rerender"
    voice_threshold: float = Field(
        default=SAME_VOICE_THRESHOLD,
        description="speaker-embedding similarity below which a line is not in its voice",
    )
    min_voice_s: float = Field(
        default=1.2, description="shorter lines are not judged by voice (too little to tell)"
    )
    enabled: bool = Field(default=True, description="off: keep every render unheard")
    max_attempts: int = Field(default=3, ge=1, description="renders, the first included")
    retry_margin_s: float = Field(default=1.0, ge=0, description="on top of the duration rule")
    duration_rule: PlanRules = Field(default_factory=_plan_rules)
    silence_lufs: float = -50.0
    max_ok_wer: float = 0.35
    max_misheard_wer: float = Field(
        default=0.6, description="up to this WER the words were spoken but misheard by ASR"
    )
    misheard_sound_similarity: float = Field(
        default=0.65,
        description="above max_misheard_wer, a line that sounds this alike (Metaphone keys, 0-1) "
        "was spoken and misheard, not replaced",
    )
    running_margin_s: float = Field(
        default=0.1, ge=0, description="without sound levels: a line's last heard word ending "
        "this close to its segment's end was still being spoken there",
    )  # fmt: skip
    cut_margin_s: float = Field(
        default=0.4, ge=0, description="a line whose last words went unheard and whose heard "
        "words end this close to its segment's end lost them to the boundary",
    )  # fmt: skip
    cut_level_share: float = Field(
        default=0.5, gt=0, le=1, description="a segment's end this far (in dB) from the noise "
        "floor to the speech level is still speech",
    )  # fmt: skip
    same_audio_tolerance_s: float = Field(
        default=0.15, ge=0, description="a re-render heard as the same words this close in time "
        "sounds the same: stop re-rendering",
    )  # fmt: skip
    scene_word_ratio: float = Field(default=80.0, description="rapidfuzz ratio: 'wave' ~ 'waves'")
    narration_min_overlap: float = 0.4
    min_unscripted_words: int = Field(default=3, description="fewer heard words are ASR junk")
    title_window_s: float = 5.0
    title_match_ratio: float = 85.0
    title_card_phrases: list[str] = Field(
        default_factory=lambda: ["a film by", "presents", "directed by", "written by", "starring"]
    )
    mute_pad_s: float = 0.1
