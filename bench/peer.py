"""A film driven the way common peer scripts drive ComfyUI: the baseline's reference.

Serial, one prompt at a time; poll `/history/{id}` every 3 s; download with `/view`;
last frame with the ffmpeg command line; upload it with `/upload/image`; no cache, no
verification, no dialogue check or loudness pass; a concat copy at the end. The prompts are
reelflow's own (same plan, same templates), so the GPU does exactly the same work.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tasks.comfyui.models import load_models
from tasks.comfyui.workflow import TemplateKind, keyframe_prompt, load_template
from tasks.render import relay_sequence_prompt
from tasks.schema.film_plan import Chain, FilmPlan, Sequence

POLL_S = 3.0


def _keyframe(plan: FilmPlan, chain: Chain) -> dict[str, Any]:
    assert chain.keyframe.prompt is not None
    return keyframe_prompt(
        load_template(TemplateKind.keyframe),
        prompt=chain.keyframe.prompt,
        width=plan.width,
        height=plan.height,
        seed=chain.keyframe.seed,
        models=load_models(plan.mode),
        output_prefix="peer/keyframe",
    )


def _sequence(plan: FilmPlan, sequence: Sequence, start: str | None) -> dict[str, Any]:
    kind = TemplateKind.relay_i2v if start is not None else TemplateKind.relay_t2v
    return relay_sequence_prompt(
        load_template(kind),
        load_models(plan.mode),
        plan,
        sequence,
        start,
        output_prefix="peer/sequence",
    )


def _run(http: httpx.Client, prompt: dict[str, Any], folder: Path) -> Path:
    prompt_id = http.post("/prompt", json={"prompt": prompt}).json()["prompt_id"]
    while True:
        time.sleep(POLL_S)
        entry = http.get(f"/history/{prompt_id}").json().get(prompt_id)
        if entry and entry["status"]["completed"]:
            break
    for output in entry["outputs"].values():
        for items in output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "filename" in item:
                    answer = http.get("/view", params=item)
                    path = folder / item["filename"]
                    path.write_bytes(answer.content)
                    return path
    raise RuntimeError(f"prompt {prompt_id} produced no file")


def _last_frame(video: Path) -> Path:
    frame = video.with_suffix(".last.png")
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-sseof",
            "-1",
            "-i",
            str(video),
            "-update",
            "1",
            str(frame),
        ],
        check=True,
    )
    return frame


def _upload(http: httpx.Client, image: Path) -> str:
    with image.open("rb") as handle:
        files = {"image": (image.name, handle, "image/png")}
        answer = http.post("/upload/image", files=files, data={"overwrite": "true"})
    return str(answer.json()["name"])


def render_film(url: str, plan: FilmPlan, folder: Path) -> Path:
    """Render every chain in turn, carry frames by hand, then concat-copy the sequences."""
    folder.mkdir(parents=True, exist_ok=True)
    videos: dict[int, Path] = {}
    with httpx.Client(base_url=url, timeout=600) as http:
        for chain in plan.chains:
            start = None
            if chain.keyframe.prompt is not None:
                start = _upload(http, _run(http, _keyframe(plan, chain), folder))
            for index in chain.sequences:
                video = _run(http, _sequence(plan, plan.sequences[index], start), folder)
                videos[index] = video
                start = _upload(http, _last_frame(video))
    listing = folder / "concat.txt"
    listing.write_text("".join(f"file '{videos[i]}'\n" for i in sorted(videos)))
    film = folder / "film.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-v",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(film),
        ],
        check=True,
    )
    return film
