"""Takes in the plan, the take score, and the GPU estimate that learns: pure functions, fast."""

from __future__ import annotations

import pytest

from tasks.cost import GpuLedger, LearnedRates, rates_key
from tasks.errors import ReelflowError
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.takes import take_of
from tasks.schema.outcomes import Take, TakeScore
from tasks.schema.refs import MediaRef
from tasks.schema.screenplay import Screenplay
from tasks.schema.verdicts import LineVerdict, SequenceVerdict, SpeechVerdict, TimeRange
from tasks.takes import kept_take, score_take
from tests.test_plan import film as screenplay

DEFAULTS = load_defaults()


def film(scenes: list[dict[str, object]], **render: object) -> Screenplay:
    return screenplay(scenes, render=render)


def shots(count: int, **extra: object) -> list[dict[str, object]]:
    return [
        {"description": f"Shot {n}.", "duration": 4, "relay_break": n > 0, **extra}
        for n in range(count)
    ]


def test_a_sequence_has_the_most_takes_its_scenes_ask_for_and_the_option_overrides_all() -> None:
    scenes = [
        {"description": "A.", "duration": 2},
        {"description": "B.", "duration": 2, "takes": 3},  # packed with A into sequence 0
        {"description": "C.", "duration": 2, "relay_break": True},
    ]
    plan = plan_film(film(scenes, takes=2), DEFAULTS)
    assert [s.takes for s in plan.sequences] == [3, 2]
    assert [s.takes for s in plan_film(film(scenes), DEFAULTS, takes=1).sequences] == [1, 1]


def test_take_zero_renders_with_the_sequence_seed_and_every_other_take_with_its_own() -> None:
    one = plan_film(film(shots(2)), DEFAULTS)
    three = plan_film(film(shots(2), takes=3), DEFAULTS)
    # Asking for takes does not change a sequence's own seed: take 0 is what one take was.
    assert [s.seed for s in one.sequences] == [s.seed for s in three.sequences]
    sequence = three.sequences[0]
    seeds = [take_of(sequence, take).seed for take in range(3)]
    assert seeds[0] == sequence.seed and len(set(seeds)) == 3
    assert take_of(sequence, 2).segments == sequence.segments


def test_the_estimate_pays_for_every_take() -> None:
    one = plan_film(film(shots(3)), DEFAULTS).estimate
    two = plan_film(film(shots(3)), DEFAULTS, takes=2).estimate
    assert two.sequences_s == pytest.approx(2 * one.sequences_s)
    assert (two.keyframes_s, two.cues_s) == (one.keyframes_s, one.cues_s)


def test_a_pick_of_a_take_or_sequence_that_does_not_exist_is_refused_in_one_sentence() -> None:
    screenplay = film(shots(2), takes=2)
    assert plan_film(screenplay, DEFAULTS, picks={1: 1}).sequences[1].pick == 1
    with pytest.raises(
        ReelflowError, match=r"--pick 1=2: sequence 1 has 2 take\(s\), numbered 0 to 1"
    ):
        plan_film(screenplay, DEFAULTS, picks={1: 2})
    with pytest.raises(ReelflowError, match=r"--pick 5=0: the film has sequences 0 to 1"):
        plan_film(screenplay, DEFAULTS, picks={5: 0})


def test_rerolling_a_keyframe_changes_that_chains_keyframe_seed_and_nothing_else() -> None:
    scenes = shots(3)
    scenes[1]["tags"] = ["keyframe"]
    scenes[2]["tags"] = ["keyframe"]
    before = plan_film(film(scenes), DEFAULTS)
    after = plan_film(film(scenes), DEFAULTS, keyframe_rerolls={1: 1})
    twice = plan_film(film(scenes), DEFAULTS, keyframe_rerolls={1: 2})
    same = [
        c.keyframe.seed == d.keyframe.seed for c, d in zip(before.chains, after.chains, strict=True)
    ]
    assert same == [True, False, True]
    assert twice.chains[1].keyframe.seed not in (
        before.chains[1].keyframe.seed,
        after.chains[1].keyframe.seed,
    )
    assert before.sequences == after.sequences


def line(kind: str, wer: float | None = 0.0) -> LineVerdict:
    return LineVerdict(
        segment=0, character="ANA", kind=kind, expected="a b", heard="a b", wer=wer, action="keep"
    )  # type: ignore[arg-type]


def verdict(*lines: LineVerdict, speech: int = 0, kind: str = "ok") -> SequenceVerdict:
    unscripted = [
        SpeechVerdict(kind="narration", heard="x", span=TimeRange(start=0, end=1), action="keep")
    ] * speech
    return SequenceVerdict(
        kind=kind, action="keep", silent=False, heard="", lines=list(lines), speech=unscripted
    )  # type: ignore[arg-type]


def test_the_score_follows_the_documented_weights() -> None:
    # dialogue (1 + (1 - 0.3)) / 2 = 0.85; continuity 1 / (1 + 0.1 / 0.1) = 0.5; loudness 1
    score = score_take(
        verdict(line("ok"), line("misheard", 0.3)),
        drift=0.1,
        lufs=-23.0,
        true_peak_dbtp=-3.0,
        has_lines=True,
    )
    assert score == TakeScore(
        total=round((0.45 * 0.85 + 0.25 * 0.5 + 0.10 * 1.0) / 0.80, 4),
        dialogue=0.85,
        continuity=0.5,
        loudness=1.0,
    )
    # 16 LU too quiet: 8 LU past the free band of 8, half-way to 24: loudness 0.5; a clipping
    # peak halves it again; narration nobody wrote halves the dialogue.
    quiet = score_take(
        verdict(line("ok"), speech=1), drift=None, lufs=-39.0, true_peak_dbtp=0.0, has_lines=True
    )
    assert (quiet.dialogue, quiet.loudness, quiet.continuity) == (0.5, 0.25, None)
    assert quiet.total == round((0.45 * 0.5 + 0.10 * 0.25) / 0.55, 4)


def test_a_take_missing_its_line_loses_to_one_heard_right_even_if_it_drifts_more() -> None:
    heard = score_take(verdict(line("ok")), drift=0.2, lufs=-25, true_peak_dbtp=-6, has_lines=True)
    lost = score_take(
        verdict(line("missing"), kind="missing"), drift=0.0, lufs=-25, true_peak_dbtp=-6,
        has_lines=True,
    )  # fmt: skip
    assert heard.total > lost.total
    silent = score_take(verdict(), drift=0.0, lufs=-70, true_peak_dbtp=-60, has_lines=True)
    assert silent.loudness == 0.0


def test_unmeasured_parts_are_left_out_and_voice_counts_when_the_cast_gives_it() -> None:
    unchecked = verdict(kind="unchecked")
    only_loudness = score_take(unchecked, drift=None, lufs=-23, true_peak_dbtp=-6, has_lines=True)
    assert (only_loudness.total, only_loudness.dialogue) == (1.0, None)
    with_voice = score_take(
        verdict(line("ok")), drift=0.0, lufs=-23, true_peak_dbtp=-6, has_lines=True, voice=0.2
    )
    assert with_voice.voice == 0.2
    assert with_voice.total == round((0.45 + 0.20 * 0.2 + 0.25 + 0.10) / 1.0, 4)


def take(number: int, total: float) -> Take:
    return Take(
        take=number, seed=number, video=MediaRef(sha256="0" * 64, suffix=".mp4", size=1),
        server="s", gpu_seconds=0, verdict="ok", heard="", drift=0.0, lufs=-23,
        true_peak_dbtp=-6, score=TakeScore(total=total),
    )  # fmt: skip


def test_the_best_take_is_kept_a_tie_keeps_the_lower_and_a_pick_overrides_the_score() -> None:
    assert kept_take([take(0, 0.5), take(1, 0.9), take(2, 0.7)], None) == 1
    assert kept_take([take(0, 0.8), take(1, 0.8)], None) == 0
    assert kept_take([take(0, 0.5), take(1, 0.9)], 0) == 0


def test_the_estimate_learns_from_measured_renders_on_the_same_servers() -> None:
    plan = plan_film(film(shots(2)), DEFAULTS, takes=2)  # 4 sequence renders, 1 keyframe
    fresh = LearnedRates(servers=["http://gpu-a"], mode="fast")
    ledger = GpuLedger(plan, fresh)
    planned = ledger.planned()
    ledger.charge("keyframes", prompts=1, gpu_seconds=10.0)
    ledger.charge("sequences", prompts=5, gpu_seconds=10.0 + planned["sequences"] / 2)
    entry = ledger.entry()
    assert [s.renders for s in entry.stages] == [1, 4, 0]
    assert entry.spent_s == pytest.approx(10.0 + planned["sequences"] / 2, abs=0.1)
    # Keyframes took half the default (20 s), sequences half theirs: the estimate was 2x.
    assert entry.error_pct == pytest.approx(100.0, abs=0.5)

    learned = ledger.learn()
    assert learned.factor("keyframes") == pytest.approx(0.5)
    assert learned.factor("sequences") == pytest.approx(0.5)
    assert learned.factor("cues") == 1.0  # nothing measured: the default
    nxt = GpuLedger(plan, learned)
    assert nxt.planned()["sequences"] == pytest.approx(planned["sequences"] / 2)
    assert "learned from 5" in nxt.rates_source()
    assert rates_key(["http://b", "http://a"], "fast") == rates_key(
        ["http://a", "http://b"], "fast"
    )
    assert rates_key(["http://a"], "fast") != rates_key(["http://a"], "quality")


def test_cue_renders_made_beside_the_chains_are_charged_to_the_cues() -> None:
    plan = plan_film(film(shots(2)), DEFAULTS)
    ledger = GpuLedger(plan, LearnedRates(servers=["http://gpu-a"], mode="fast"))
    ledger.charge("keyframes", prompts=1, gpu_seconds=10.0)
    # By the takes gate, two sequences and one cue (started while the chains ran) are done.
    ledger.charge("sequences", 4, 70.0, score_prompts=1, score_gpu_seconds=20.0)
    ledger.charge("cues", 4, 70.0, score_prompts=1, score_gpu_seconds=20.0)
    entry = ledger.entry()
    assert [s.renders for s in entry.stages] == [1, 2, 1]
    assert [s.spent_s for s in entry.stages] == [10.0, 40.0, 20.0]
