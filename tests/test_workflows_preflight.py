"""A half-installed server: every missing piece in one short message, before any GPU work.

The simulator is told to lack the keyframe model and the score's ACE-Step model, and the
film's image-to-video workflow (the studio's own, chosen with --workflows) interpolates
frames with a custom node pack the server does not have.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prefect.filesystems import LocalFileSystem

from blocks.comfyui import ComfyUIServer
from sim.embedded import start_simulator
from sim.inventory import default_models
from sim.settings import SimSettings
from tasks.comfyui.errors import PromptRejected
from tasks.comfyui.models import load_models
from tasks.comfyui.workflow import WORKFLOWS_DIR, TemplateKind
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.preflight import film_prompts
from tasks.runtime.slots import FileLockSlots
from tasks.runtime.store import MediaStore
from tasks.runtime.studio import Studio
from tasks.score import render_cue
from tests.film_helpers import film_command, harness_environment, sim_stats, write_screenplay

MODELS = load_models("fast")
KEYFRAME_MODEL = MODELS.keyframe.diffusion_model
CUE_MODEL = MODELS.acestep15.diffusion_model
SCENES = [
    {"description": "A pier at dawn.", "duration": 2.0},
    {"description": "Gulls over the water.", "duration": 2.0, "relay_break": True},
    {"description": "The ferry leaves.", "duration": 2.0, "tags": ["keyframe"]},
]


def _half_installed() -> dict[str, list[str]]:
    models = {folder: list(files) for folder, files in default_models().items()}
    models["diffusion_models"] = [
        name for name in models["diffusion_models"] if name not in (KEYFRAME_MODEL, CUE_MODEL)
    ]
    return models


def _offline_studio(root: Path, servers: list[ComfyUIServer]) -> Studio:
    """A studio needing no Prefect API (for calling a task's `.fn` directly)."""
    return Studio(
        store=MediaStore(LocalFileSystem(basepath=str(root / "media")), root / "scratch"),
        results=LocalFileSystem(basepath=str(root / "results")),
        cache_locks=root / "locks" / "cache",
        servers=servers,
        slots=FileLockSlots(root / "locks"),
        models=MODELS,
        templates=Studio.templates_for(),
    )


def _interpolating_relay(folder: Path) -> Path:
    """The built-in image-to-video graph with RIFE frame interpolation before CreateVideo."""
    graph = json.loads((WORKFLOWS_DIR / f"{TemplateKind.relay_i2v.value}.json").read_text())
    decoded = graph["43"]["inputs"]["images"]
    graph["50"] = {
        "class_type": "RIFE VFI",
        "inputs": {"frames": decoded, "ckpt_name": "rife47.pth", "multiplier": 1},
        "_meta": {"title": "Smoother motion"},
    }
    graph["43"]["inputs"]["images"] = ["50", 0]
    path = folder / "interpolating_i2v.json"
    path.write_text(json.dumps(graph))
    return path


@pytest.mark.usefixtures("prefect_api")
def test_a_half_installed_server_gets_every_missing_piece_once_before_any_render(
    tmp_path: Path,
) -> None:
    settings = SimSettings(gpu_seconds_per_output_second=0, models=_half_installed())
    with start_simulator(settings, workdir=tmp_path / "sim") as sim:
        screenplay = write_screenplay(tmp_path, SCENES, score={"theme": "low strings"})
        relay = _interpolating_relay(tmp_path)
        command = film_command(screenplay, tmp_path / "out", [sim.url])
        done = subprocess.run(
            [*command, "--workflows", f"relay_i2v={relay}"],
            capture_output=True,
            text=True,
            env={**harness_environment(), "COLUMNS": "250"},
            timeout=300,
            check=False,
        )
        assert sim_stats(sim.url)["prompts_executed"] == 0
    everything = done.stdout + done.stderr
    assert done.returncode == 3, everything
    # One round found all three, and each is said exactly once, wherever the user looks.
    assert everything.count(KEYFRAME_MODEL) == 1
    assert everything.count(CUE_MODEL) == 1
    assert everything.count("RIFE VFI") == 1
    # The refusal is an error: it goes to stderr, once.
    assert f"{KEYFRAME_MODEL} -> models/diffusion_models (needed by keyframes 0, 1)" in done.stderr
    assert f"{CUE_MODEL} -> models/diffusion_models (needed by score cue 0)" in done.stderr
    assert "RIFE VFI: install the custom node pack ComfyUI-Frame-Interpolation" in done.stderr
    assert "needed by sequences 0-2, re-renders 0-2" in done.stderr
    assert "Traceback" not in everything
    [state] = [line for line in done.stderr.splitlines() if "Finished in state Failed" in line]
    assert "lacks 2 model files, 1 node class; nothing was rendered" in state


def test_a_rejection_after_preflight_names_the_stage_and_what_to_do(tmp_path: Path) -> None:
    # Preflight would have caught this; here the model goes missing after it passed.
    settings = SimSettings(gpu_seconds_per_output_second=0, models=_half_installed())
    screenplay = write_screenplay(tmp_path, SCENES[:1], score={"theme": "low strings"})
    plan = plan_film(load_screenplay(screenplay), load_defaults())
    with start_simulator(settings, workdir=tmp_path / "sim") as sim:
        studio = _offline_studio(tmp_path, [ComfyUIServer(url=sim.url)])
        with pytest.raises(PromptRejected) as caught:
            asyncio.run(render_cue.fn(studio, plan.cues[0]))
    assert caught.value.stage == "score cue 0"
    assert str(caught.value) == (
        f"score cue 0: ComfyUI at {sim.url} refused the prompt: {CUE_MODEL} -> "
        "models/diffusion_models. Next: put the missing model files or node packs on the "
        "server, then run the same command again; renders that finished come from the cache."
    )


def test_preflight_covers_every_kind_of_prompt_the_film_can_send(tmp_path: Path) -> None:
    lines = [{"character": "ANA", "line": "Not tonight."}]
    scenes = [{**SCENES[0], "dialogue": lines}, *SCENES[1:]]
    plan = plan_film(load_screenplay(write_screenplay(tmp_path, scenes, score={})), load_defaults())
    studio = _offline_studio(tmp_path, [])
    with_keyframes = film_prompts(studio, plan, use_keyframes=True)
    assert set(with_keyframes) == {
        "keyframe 0",
        "keyframe 1",
        *(f"sequence {n}" for n in range(3)),
        *(f"re-render {n}" for n in range(3)),
        *(f"score cue {cue.index}" for cue in plan.cues),
    }
    assert plan.cues
    text_to_video = film_prompts(studio, plan, use_keyframes=False)
    assert not any(name.startswith("keyframe") for name in text_to_video)

    def loads_a_start_frame(prompt: dict[str, Any]) -> bool:
        return any(node["class_type"] == "LoadImage" for node in prompt.values())

    # Each chain's first sequence starts from nothing; the second carries a frame forward.
    assert not loads_a_start_frame(text_to_video["sequence 0"])
    assert loads_a_start_frame(text_to_video["sequence 1"])
    assert not loads_a_start_frame(text_to_video["re-render 0"])
    # A dialogue re-render may grow to the frame budget: preflight sends that length.
    frames = {
        name: next(n["inputs"]["length"] for n in prompt.values() if "length" in n["inputs"])
        for name, prompt in text_to_video.items()
        if name.startswith(("sequence", "re-render"))
    }
    assert frames["re-render 0"] == plan.frame_budget > frames["sequence 0"]
