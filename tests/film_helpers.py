"""Helpers for tests that render whole films: small screenplays, simulator processes, counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from flows.film import FilmResult, film

TINY_RENDER = {"width": 256, "height": 256, "fps": 24}


def write_screenplay(folder: Path, scenes: list[dict[str, Any]], **extra: Any) -> Path:
    document = {
        "title": "Test Reel",
        "style": "flat colours",
        "setting": "a quiet harbour",
        "characters": {"ANA": "a woman in a red coat", "BO": "a boy in a yellow hat"},
        "render": TINY_RENDER,
        "score": None,
        "scenes": scenes,
        **extra,
    }
    path = folder / "film.json"
    path.write_text(json.dumps(document))
    return path


def three_chain_scenes() -> list[dict[str, Any]]:
    """Three chains of two sequences each: six renders, three keyframes."""
    scenes: list[dict[str, Any]] = []
    for chain in range(3):
        for shot in range(2):
            scene: dict[str, Any] = {
                "description": f"Chain {chain} shot {shot}, waves roll.",
                "duration": 2.0,
                "relay_break": shot > 0,
            }
            if shot == 0 and chain > 0:
                scene["tags"] = ["keyframe"]
            scenes.append(scene)
    return scenes


def render(screenplay: Path, out: Path, servers: list[str], **options: Any) -> FilmResult:
    return asyncio.run(film(screenplay=str(screenplay), comfyui=servers, out=str(out), **options))


def sim_stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/reelflow-sim/stats", timeout=10).json()  # type: ignore[no-any-return]
