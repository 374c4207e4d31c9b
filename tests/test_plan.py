"""The plan encodes the production rules; the examples are checked by hand below."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tasks.media.mix import assembled_length
from tasks.plan.cues import split_zone
from tasks.plan.defaults import load_defaults
from tasks.plan.film import frame_budget, plan_film, scene_frames
from tasks.plan.screenplay_file import load_screenplay
from tasks.schema.screenplay import Screenplay

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DEFAULTS = load_defaults()


def example(name: str) -> Screenplay:
    return load_screenplay(EXAMPLES / f"{name}.json")


def film(scenes: list[dict[str, object]], **extra: object) -> Screenplay:
    return Screenplay.model_validate(
        {
            "title": "Test Film",
            "style": "plain",
            "setting": "a room",
            "characters": {"ANA": "a woman in a red coat"},
            "scenes": scenes,
            **extra,
        }
    )


def test_budget_is_489_frames_at_24_fps_and_scales_with_fps() -> None:
    assert frame_budget(24, 20.4) == 489
    assert frame_budget(30, 20.4) == 609
    assert all((frame_budget(fps, 20.4) - 1) % 8 == 0 for fps in range(8, 61))


def test_lighthouse_keeper_packs_into_seven_sequences_in_one_chain() -> None:
    plan = plan_film(example("the_lighthouse_keeper"), DEFAULTS)
    assert [s.frames for s in plan.sequences] == [337, 241, 409, 145, 409, 193, 193]
    assert [s.scene_indices for s in plan.sequences] == [
        (0, 1),
        (2,),
        (3, 4),
        (5,),
        (6,),
        (7,),
        (8,),
    ]
    assert plan.sequences[0].segment_frames == (145, 192)
    assert [s.hard_cut_before for s in plan.sequences] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    assert len(plan.chains) == 1 and plan.chains[0].sequences == tuple(range(7))
    assert round(plan.duration_s, 2) == 80.29


def test_lighthouse_keeper_lint_flags_the_short_and_the_overlong_line() -> None:
    plan = plan_film(example("the_lighthouse_keeper"), DEFAULTS)
    flagged = {(w.code, w.location) for w in plan.warnings}
    assert flagged == {
        ("too-short", "scenes[2]"),
        ("line-too-long", "scenes[6]"),
        ("too-short", "scenes[6]"),
    }


def test_fix_splits_the_overlong_line_and_lengthens_short_scenes() -> None:
    plan = plan_film(example("the_lighthouse_keeper"), DEFAULTS, fix=True)
    assert not [w for w in plan.warnings if w.code in ("too-short", "line-too-long")]
    spoken = [line.line for s in plan.sequences for line in s.lines if line.character == "EDDA"]
    assert spoken[1].startswith("My father told me") and spoken[2].endswith("until he did.")
    assert len(plan.sequences) == 8
    assert {c.location for c in plan.changes} == {"scenes[2]", "scenes[6]"}


def test_two_at_the_station_is_one_sequence_with_its_two_lines() -> None:
    plan = plan_film(example("two_at_the_station"), DEFAULTS)
    (sequence,) = plan.sequences
    assert sequence.segment_frames == (145, 192)
    assert sequence.segment_prompts[1].endswith(
        'TOMAS says "I missed it on purpose. I wanted to talk."'
    )
    assert "MARA: A woman in her forties" in sequence.wrapper_prompt
    assert plan.score_source == "default" and len(plan.cues) == 1


def test_northern_lights_breaks_at_the_relay_break() -> None:
    plan = plan_film(example("northern_lights_abstract"), DEFAULTS)
    assert [s.scene_indices for s in plan.sequences] == [(0, 1, 2), (3, 4)]
    assert [s.frames for s in plan.sequences] == [433, 289]
    assert not plan.warnings


def test_wrapper_never_contains_the_title_and_asks_for_no_music() -> None:
    screenplay = film(
        [{"description": "Ana waits.", "duration": 6}], style="in the style of Test Film posters"
    )
    plan = plan_film(screenplay, DEFAULTS)
    wrapper = plan.sequences[0].wrapper_prompt
    assert "test film" not in wrapper.lower() and "no music" in wrapper
    assert any(w.code == "title-in-prompt" for w in plan.warnings)


def test_negative_prompt_always_suppresses_music() -> None:
    plan = plan_film(
        film([{"description": "Ana waits.", "duration": 6}], negative_prompt="blurry"), DEFAULTS
    )
    negative = plan.sequences[0].negative_prompt
    assert negative.startswith("blurry") and "soundtrack" in negative and "drums" in negative


def test_editing_one_scene_changes_only_its_sequence_seed() -> None:
    scenes = [{"description": f"Shot {n}.", "duration": 15, "relay_break": n > 0} for n in range(4)]
    before = plan_film(film(scenes), DEFAULTS)
    scenes[2] = scenes[2] | {"description": "Shot two, rewritten."}
    after = plan_film(film(scenes), DEFAULTS)
    changed = [
        a.index for a, b in zip(before.sequences, after.sequences, strict=True) if a.seed != b.seed
    ]
    assert changed == [2]


def test_reroll_changes_that_sequence_seed_only() -> None:
    scenes = [{"description": f"Shot {n}.", "duration": 15} for n in range(3)]
    before = plan_film(film(scenes), DEFAULTS)
    after = plan_film(film(scenes), DEFAULTS, rerolls={1: 1})
    assert [a.seed == b.seed for a, b in zip(before.sequences, after.sequences, strict=True)] == [
        True,
        False,
        True,
    ]


def test_source_image_starts_a_new_chain() -> None:
    screenplay = film(
        [
            {"description": "A.", "duration": 6},
            {"description": "B.", "duration": 6},
            {"description": "C.", "duration": 6, "tags": ["keyframe"]},
        ]
    )
    plan = plan_film(screenplay, DEFAULTS)
    assert [c.sequences for c in plan.chains] == [(0,), (1,)]
    assert plan.chains[1].keyframe.prompt is not None


def test_a_long_silent_scene_is_split_across_sequences_of_one_chain() -> None:
    plan = plan_film(film([{"description": "The sea.", "duration": 50}]), DEFAULTS)
    assert len(plan.sequences) == 3 and len(plan.chains) == 1
    assert all(s.frames <= plan.frame_budget for s in plan.sequences)


def test_explicit_null_score_means_no_cues() -> None:
    plan = plan_film(film([{"description": "A.", "duration": 6}], score=None), DEFAULTS)
    assert plan.score_source == "none" and plan.cues == ()


def test_a_feature_gets_five_to_ten_cues_with_sequential_seeds() -> None:
    scenes = [
        {"description": f"Shot {n}.", "duration": 12, "tags": ["transition"] if n % 4 == 0 else []}
        for n in range(60)
    ]
    plan = plan_film(film(scenes, score={"key": "D minor", "bpm": 66}), DEFAULTS)
    assert 5 <= len(plan.cues) <= 10
    seeds = [c.seed for c in plan.cues]
    assert seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    assert {c.key for c in plan.cues} == {"D minor"}
    assert plan.cues[-1].tail_s == 0 and all(c.tail_s == 2 for c in plan.cues[:-1])
    total = assembled_length([c.duration_s for c in plan.cues], 2.0)
    assert abs(total - plan.duration_s) < 1e-6


@given(
    st.lists(st.floats(min_value=0.2, max_value=60, allow_nan=False), min_size=1, max_size=30),
    st.sampled_from([12, 24, 25, 30]),
)
def test_every_sequence_is_8n_plus_1_within_budget_and_never_shortens_a_scene(
    durations: list[float], fps: int
) -> None:
    screenplay = film(
        [{"description": f"Shot {n}.", "duration": d} for n, d in enumerate(durations)],
        render={"fps": fps},
    )
    plan = plan_film(screenplay, DEFAULTS)
    for sequence in plan.sequences:
        assert (sequence.frames - 1) % 8 == 0 and sequence.frames <= plan.frame_budget
        assert sum(sequence.segment_frames) == sequence.frames
    for index, duration in enumerate(durations):
        frames = sum(
            seg.frames for s in plan.sequences for seg in s.segments if seg.scene_index == index
        )
        assert frames >= scene_frames(duration, fps) and frames / fps >= duration - 1e-9


@given(st.lists(st.floats(min_value=2.5, max_value=400, allow_nan=False), min_size=1, max_size=12))
def test_cues_with_tails_add_up_to_the_zones(zones: list[float]) -> None:
    parts = [part for zone in zones for part in split_zone(zone, 238.0)]
    assert all(part <= 238.0 + 1e-9 for part in parts)
    durations = [p + 2.0 for p in parts[:-1]] + [parts[-1]]
    assert abs(assembled_length(durations, 2.0) - sum(zones)) < 1e-6


def test_plan_command_prints_the_table_and_writes_plan_json(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.film",
            "plan",
            str(EXAMPLES / "the_lighthouse_keeper.json"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "7 sequences" in result.stdout and "GPU estimate" in result.stdout
    document = json.loads((tmp_path / "plan.json").read_text())
    assert document["summary"]["sequences"] == 7
    assert [s["frames"] for s in document["plan"]["sequences"]][:2] == [337, 241]
