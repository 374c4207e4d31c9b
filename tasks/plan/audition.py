"""A cast member's audition as a sequence the relay renders: them alone, saying one line."""

from __future__ import annotations

from tasks.plan.film import audio_latent_frames
from tasks.plan.lint import word_count
from tasks.plan.prompts import quoted
from tasks.plan.seeds import derive_seed
from tasks.schema.film_plan import CastMember, FilmPlan, PlannedLine, Segment, Sequence


def audition_sequence(plan: FilmPlan, member: CastMember, attempt: int = 0) -> Sequence:
    """The audition as a one-segment sequence: the character alone, saying their line
    (a text-to-video render; attempt k > 0 re-rolls its seed)."""
    assert member.audition is not None
    audition = member.audition
    frames = round(audition.seconds * plan.fps)
    seed = audition.seed if attempt == 0 else derive_seed(audition.seed, "retake", attempt)
    prompt = (
        f"{member.description}, alone, facing the camera. "
        f"{member.name} says {quoted(audition.line)}"
    )
    return Sequence(
        index=-1,
        chain=-1,
        position=0,
        segments=(Segment(scene_index=0, frames=frames, prompt=prompt),),
        frames=frames,
        fps=plan.fps,
        audio_latent_frames=audio_latent_frames(frames, plan.fps),
        wrapper_prompt=f"{member.name}: {member.description}. A quiet room, plain background.",
        negative_prompt=plan.sequences[0].negative_prompt,
        seed=seed,
        start_s=0.0,
        hard_cut_before=True,
        lines=(
            PlannedLine(
                scene_index=0,
                character=member.name,
                line=audition.line,
                words=word_count(audition.line),
                start_s=0.0,
                end_s=frames / plan.fps,
            ),
        ),
    )
