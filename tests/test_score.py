"""Score cues: prompts, retimed zones, real cue renders on the simulator, crossfaded assembly.

Also home of the small film the score, mux and deliver tests share: three sequences with a
line in the first and last and a dialogue-free middle, cued every ~7 s so it has four cues.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prefect.filesystems import LocalFileSystem

from blocks.comfyui import ComfyUIServer
from flows.run import build_studio
from sim.embedded import RunningSimulator, start_simulator
from sim.inventory import default_models
from sim.settings import SimSettings
from tasks import media
from tasks.comfyui.models import load_models
from tasks.comfyui.workflow import MAX_CUE_SECONDS
from tasks.media.mix import assembled_length
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.render import render_sequence
from tasks.runtime.slots import FileLockSlots
from tasks.runtime.store import MediaStore, local_storage
from tasks.runtime.studio import Studio
from tasks.schema.film_plan import FilmPlan
from tasks.schema.outcomes import RenderedSequence, ScoreResult
from tasks.schema.screenplay import Screenplay
from tasks.score import (
    CUE_TAIL_S,
    ScoreError,
    cue_render_prompt,
    measured_scene_starts,
    render_cue,
    render_score,
    retime_cues,
)
from tests.sim_helpers import decode_audio

REPO = Path(__file__).resolve().parents[1]
MODELS = load_models("fast")
RATE = 48000


# --- the shared small film ----------------------------------------------------------------


def harbour_screenplay(**extra: Any) -> Screenplay:
    line = "After speaking {} smiles"
    return Screenplay.model_validate(
        {
            "title": "Harbour: A Test Reel",
            "style": "flat colours",
            "setting": "a quiet harbour",
            "characters": {"ANA": "a woman in a red coat", "BO": "a boy in a yellow hat"},
            "render": {"width": 256, "height": 256, "fps": 24},
            "scenes": [
                {"description": "Waves roll in under a grey sky", "duration": 5.0},
                {
                    "description": "Ana waits on the pier. " + line.format("she"),
                    "duration": 6.0,
                    "characters": ["ANA"],
                    "dialogue": [{"character": "ANA", "line": "The boat is late."}],
                },
                {"description": "Gulls circle the harbour", "duration": 6.0, "relay_break": True},
                {
                    "description": "Bo runs along the quay. " + line.format("he"),
                    "duration": 6.0,
                    "relay_break": True,
                    "characters": ["BO"],
                    "dialogue": [{"character": "BO", "line": "Here it comes now!"}],
                },
            ],
            **extra,
        }
    )


def harbour_plan(**extra: Any) -> FilmPlan:
    """Three sequences (scenes 0-1, 2, 3); cue rules shrunk so a 22 s film gets four cues."""
    defaults = load_defaults()
    short_cues = defaults.cues.model_copy(update={"seconds_per_cue": 7.0, "min_zone_seconds": 4.0})
    return plan_film(harbour_screenplay(**extra), defaults.model_copy(update={"cues": short_cues}))


def sim_inventory() -> dict[str, list[str]]:
    """The simulator's models plus the ACE-Step files reelflow's models.toml names."""
    models = {folder: list(files) for folder, files in default_models().items()}
    ace = MODELS.acestep15
    for folder, name in (
        ("diffusion_models", ace.diffusion_model),
        ("vae", ace.vae),
        ("text_encoders", ace.text_encoder_small),
        ("text_encoders", ace.text_encoder_large),
    ):
        models.setdefault(folder, [])
        if name not in models[folder]:
            models[folder].append(name)
    return models


def start_sim() -> RunningSimulator:
    settings = SimSettings(gpu_seconds_per_output_second=0, models=sim_inventory())
    return start_simulator(settings)


def offline_studio(url: str, root: Path) -> Studio:
    """A studio needing no Prefect API (for calling tasks' `.fn` directly)."""
    return Studio(
        store=MediaStore(LocalFileSystem(basepath=str(root / "media")), root / "scratch"),
        results=LocalFileSystem(basepath=str(root / "results")),
        cache_locks=root / "locks" / "cache",
        servers=[ComfyUIServer(url=url)],
        slots=FileLockSlots(root / "locks"),
        models=MODELS,
        templates=Studio.templates_for(),
    )


def render_sequences(studio: Studio, plan: FilmPlan) -> list[RenderedSequence]:
    async def render_all() -> list[RenderedSequence]:
        return [await render_sequence.fn(studio, plan, s, None) for s in plan.sequences]

    return asyncio.run(render_all())


def measured_seconds(studio: Studio, rendered: list[RenderedSequence]) -> list[float]:
    async def measure() -> list[float]:
        paths = [await studio.store.fetch(r.video) for r in rendered]
        return [media.probe(path).video.duration for path in paths]  # type: ignore[union-attr]

    return asyncio.run(measure())


def sim_prompts(url: str) -> int:
    return int(httpx.get(f"{url}/reelflow-sim/stats", timeout=10).json()["prompts_executed"])


# --- cue prompts and retimed zones (pure) ------------------------------------------------


def test_every_cue_prompt_carries_palette_key_bpm_theme_and_xl_turbo_settings(
    tmp_path: Path,
) -> None:
    plan = plan_film(load_screenplay(REPO / "examples" / "the_lighthouse_keeper.json"),
                     load_defaults())  # fmt: skip
    studio = offline_studio("http://127.0.0.1:9", tmp_path)
    assert len(plan.cues) >= 2
    for cue in plan.cues:
        prompt = cue_render_prompt(studio, cue)
        by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
        encoder = by_class["TextEncodeAceStepAudio1.5"]
        for shared in ("cello, low strings, celesta", "D minor", "66 bpm", "THE LAMP THEME"):
            assert shared in encoder["tags"]
        assert f"section: {cue.section}" in encoder["tags"]
        assert cue.dynamics in encoder["tags"]
        assert encoder["keyscale"] == "D minor" and encoder["bpm"] == 66
        assert encoder["seed"] == cue.seed and encoder["duration"] == cue.duration_s
        assert by_class["EmptyAceStep1.5LatentAudio"]["seconds"] == cue.duration_s
        sampler = by_class["KSampler"]
        assert (sampler["cfg"], sampler["steps"], sampler["seed"]) == (1.0, 10, cue.seed)
        clip = by_class["DualCLIPLoader"]
        assert {clip["clip_name1"], clip["clip_name2"]} == {
            "qwen_0.6b_ace15.safetensors",
            "qwen_4b_ace15.safetensors",
        }
        assert "ModelSamplingAuraFlow" in by_class
    assert [c.seed - plan.cues[0].seed for c in plan.cues] == list(range(len(plan.cues)))


LIGHTHOUSE = plan_film(load_screenplay(REPO / "examples" / "the_lighthouse_keeper.json"),
                       load_defaults())  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_retimed_cues_add_up_to_the_measured_film(data: st.DataObject) -> None:
    plan = data.draw(st.sampled_from([LIGHTHOUSE, harbour_plan()]))
    stretch = st.floats(min_value=0.85, max_value=1.15)
    measured = [s.seconds * data.draw(stretch) for s in plan.sequences]
    cues = retime_cues(plan, measured)
    film_s = sum(measured)
    durations = [c.duration_s for c in cues]
    assert sum(durations) - CUE_TAIL_S * (len(cues) - 1) == pytest.approx(film_s, abs=1e-6)
    assert assembled_length(durations, CUE_TAIL_S) == pytest.approx(film_s, abs=1e-6)
    assert cues[0].start_s == 0.0
    for before, after in itertools.pairwise(cues):
        assert after.start_s == pytest.approx(before.end_s, abs=1e-9)
    assert [c.tail_s for c in cues] == [CUE_TAIL_S] * (len(cues) - 1) + [0.0]
    assert [c.seed for c in cues] == [plan.cues[0].seed + n for n in range(len(cues))]
    assert all(c.duration_s <= MAX_CUE_SECONDS for c in cues)
    starts = measured_scene_starts(plan, measured)
    planned_scenes = {c.first_scene for c in plan.cues}
    assert {c.first_scene for c in cues} == planned_scenes
    for scene in planned_scenes:
        first = next(c for c in cues if c.first_scene == scene)
        assert first.start_s == pytest.approx(starts[scene], abs=1e-9)


def test_a_zone_that_grows_past_one_generation_is_split_again() -> None:
    long_film = Screenplay.model_validate(
        {
            "title": "Long Take",
            "style": "plain",
            "setting": "a desert",
            "characters": {},
            "scenes": [
                {"description": f"Dunes drift, shot {n}", "duration": 20.0, "relay_break": True}
                for n in range(12)
            ],
        }
    )
    defaults = load_defaults()
    one_zone = defaults.cues.model_copy(update={"seconds_per_cue": 10_000.0})
    plan = plan_film(long_film, defaults.model_copy(update={"cues": one_zone}))
    assert len({c.first_scene for c in plan.cues}) == 1
    as_planned = retime_cues(plan, [s.seconds for s in plan.sequences])
    assert len(as_planned) == len(plan.cues) == 2
    stretched = retime_cues(plan, [s.seconds * 2 for s in plan.sequences])
    assert len(stretched) == 3
    assert all(c.duration_s <= MAX_CUE_SECONDS for c in stretched)
    assert [c.section for c in stretched[:2]] == [c.section for c in plan.cues]


def test_retiming_refuses_a_measurement_per_sequence_mismatch() -> None:
    plan = harbour_plan()
    with pytest.raises(ScoreError, match="3 sequences"):
        retime_cues(plan, [5.0, 5.0])


def test_a_film_without_a_score_section_gets_the_default_and_score_null_gets_none() -> None:
    assert harbour_plan().score_source == "default" and harbour_plan().cues
    silent = harbour_plan(score=None)
    assert silent.score_source == "none" and silent.cues == ()
    assert retime_cues(silent, [s.seconds for s in silent.sequences]) == []


# --- real cue renders on the simulator ------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_sim() as running:
        yield running


def test_cue_files_are_taken_by_the_name_the_history_reports(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    studio = offline_studio(sim.url, tmp_path)
    plan = harbour_plan()
    first, second = plan.cues[0], plan.cues[1]

    async def both() -> tuple[Any, Any]:
        return await render_cue.fn(studio, first), await render_cue.fn(studio, second)

    rendered = asyncio.run(both())
    written = sorted((sim.output_dir / "reelflow").glob("cue_*.mp3"))
    assert len(written) >= 2
    on_server = {hashlib.sha256(path.read_bytes()).hexdigest(): path.name for path in written}
    names = [on_server[r.audio.sha256] for r in rendered]
    assert names[0] != names[1]  # SaveAudioMP3 counts up: one prefix, two names
    for cue, result in zip((first, second), rendered, strict=True):
        local = asyncio.run(studio.store.fetch(result.audio))
        info = media.probe(local).audio
        assert info is not None and info.rate == RATE
        assert abs(len(decode_audio(local)) / RATE - cue.duration_s) < 0.01
        assert (result.seed, result.seconds) == (cue.seed, cue.duration_s)


@pytest.fixture(scope="module")
def composed(
    sim: RunningSimulator, prefect_api: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Studio, FilmPlan, list[float], ScoreResult, ScoreResult, int]:
    """The harbour film rendered, then its score composed twice through the task engine."""
    root = tmp_path_factory.mktemp("score")
    plan = harbour_plan()

    async def compose_twice() -> tuple[Studio, list[float], ScoreResult, ScoreResult, int]:
        studio = await build_studio(
            [ComfyUIServer(url=sim.url)], local_storage(root / "store"), root / "scratch", "fast"
        )
        rendered = [await render_sequence.fn(studio, plan, s, None) for s in plan.sequences]
        paths = [await studio.store.fetch(r.video) for r in rendered]
        measured = [media.probe(p).video.duration for p in paths]  # type: ignore[union-attr]
        first = await render_score(studio, plan, measured)
        prompts_after_first = sim_prompts(sim.url)
        again = await render_score(studio, plan, measured)
        assert first is not None and again is not None
        return studio, measured, first, again, sim_prompts(sim.url) - prompts_after_first

    studio, measured, first, again, extra_prompts = asyncio.run(compose_twice())
    return studio, plan, measured, first, again, extra_prompts


def test_composing_the_score_again_renders_no_cue_twice(composed: Any) -> None:
    _, plan, _, first, again, extra_prompts = composed
    assert len(first.renders) == len(plan.cues) == 4
    assert not any(r.cached for r in first.renders)
    assert all(r.cached for r in again.renders)
    assert extra_prompts == 0
    assert again.score == first.score


def test_the_score_is_48k_flac_lasting_exactly_the_measured_film(composed: Any) -> None:
    studio, _, measured, score, _, _ = composed
    path = asyncio.run(studio.store.fetch(score.score))
    info = media.probe(path).audio
    assert info is not None and (info.codec, info.rate) == ("flac", RATE)
    assert len(decode_audio(path)) == round(sum(measured) * RATE)
    assert score.duration_s == pytest.approx(sum(measured))


def _lag_ms(score: np.ndarray, cue: np.ndarray, film_at_s: float, cue_at_s: float) -> float:
    """Where a 1 s stretch of the cue best matches the score near `film_at_s`, in ms off."""
    window, search = RATE, int(0.05 * RATE)
    reference = cue[int(cue_at_s * RATE) :][:window]
    begin = int(film_at_s * RATE)
    best, best_lag = -2.0, 0
    for lag in range(-search, search + 1, 4):
        stretch = score[begin + lag : begin + lag + window]
        corr = float(np.corrcoef(stretch, reference)[0, 1])
        if corr > best:
            best, best_lag = corr, lag
    assert best > 0.95, f"no stretch of the score matches the cue (best r={best:.2f})"
    return best_lag / RATE * 1000


def test_each_cue_plays_in_the_score_from_its_retimed_start(composed: Any) -> None:
    studio, _, _, score, _, _ = composed
    mixed = decode_audio(asyncio.run(studio.store.fetch(score.score)))
    for cue, rendered in zip(score.cues, score.renders, strict=True):
        own = decode_audio(asyncio.run(studio.store.fetch(rendered.audio)))
        # Just past the incoming crossfade, the score is this cue and nothing else.
        at = cue.start_s + (CUE_TAIL_S if cue.index else 0.0) + 0.2
        assert abs(_lag_ms(mixed, own, at, at - cue.start_s)) <= 2.0
