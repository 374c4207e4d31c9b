"""Shared helpers for the simulator tests: fixtures, websocket capture, media probes."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from PIL import Image

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "comfyui-conformance"


def fixture(name: str) -> dict[str, Any]:
    """One conformance transcript by its file-name prefix (``"13"``, ``"25b"``)."""
    matches = sorted(CONFORMANCE.glob(f"{name}_*.json"))
    assert matches, f"no fixture {name}"
    return json.loads(matches[0].read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# Fields the conformance README lists as unstable between captures.
VOLATILE = {"traceback"}


def stable(value: Any) -> Any:
    """``value`` without the fields that change between captures."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def comparable_node_errors(node_errors: dict[str, Any], note: str = "") -> dict[str, Any]:
    """Node errors with the parts the server does not keep stable removed or sorted.

    ``dependent_outputs`` comes from a set; for a link read from a JSON array (25b), which
    downstream input reached the broken node first differs between runs (README).
    """
    out = stable(node_errors)
    for entry in out.values():
        entry["dependent_outputs"] = sorted(entry["dependent_outputs"])
    if "segment_lengths-as-json-array" in note:
        for error in out["20"]["errors"]:
            for key in ("input_name", "input_config", "linked_node"):
                error["extra_info"].pop(key, None)
    return out  # type: ignore[no-any-return]


def http_steps(name: str) -> list[dict[str, Any]]:
    """The HTTP steps of a transcript."""
    return [s for s in fixture(name)["steps"] if s["kind"] == "http"]


def posted_prompts(name: str) -> list[dict[str, Any]]:
    """``(body, status, answer, note)`` of every ``POST /prompt`` in a transcript."""
    return [
        s
        for s in http_steps(name)
        if s["request"]["method"] == "POST" and s["request"]["path"].endswith("/prompt")
        and s["request"].get("json") is not None
    ]  # fmt: skip


def relay_prompt(
    width: int = 256,
    height: int = 160,
    frames: int = 49,
    segment_lengths: str = "25, 24",
    seed: int = 424242,
    local_prompts: str | None = None,
) -> dict[str, Any]:
    """Fixture 25's Prompt Relay I2V prompt, shrunk so it renders in about a second."""
    body = posted_prompts("25")[0]["request"]["json"]
    prompt = copy.deepcopy(body["prompt"])
    prompt["12"]["inputs"].update(width=width, height=height, length=frames)
    prompt["14"]["inputs"]["frames_number"] = frames
    prompt["20"]["inputs"].update(max_frames=frames, segment_lengths=segment_lengths)
    if local_prompts is not None:
        prompt["20"]["inputs"]["local_prompts"] = local_prompts
    prompt["30"]["inputs"]["noise_seed"] = seed
    return prompt  # type: ignore[no-any-return]


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG with a two-colour pattern, so scaling and colour checks have something to see."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :] = rgb
    pixels[: height // 2, : width // 2] = (255 - rgb[0], 255 - rgb[1], 255 - rgb[2])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def upload(url: str, name: str, data: bytes, **fields: str) -> httpx.Response:
    """``POST /upload/image`` with one file part."""
    files = {"image": (name, data, "image/png")}
    return httpx.post(f"{url}/upload/image", files=files, data=fields, timeout=30)


async def _run_and_listen(
    url: str, body: dict[str, Any], client_id: str, timeout: float
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = []
    ws_url = url.replace("http://", "ws://") + f"/ws?clientId={client_id}"
    async with websockets.connect(ws_url, max_size=None) as socket:
        messages.append(json.loads(await socket.recv()))
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(f"{url}/prompt", json=body)
        if answer.status_code != 200:
            return answer, messages
        prompt_id = answer.json()["prompt_id"]

        async def collect() -> None:
            while True:
                frame = await socket.recv()
                if isinstance(frame, bytes):
                    continue
                message = json.loads(frame)
                messages.append(message)
                data = message.get("data", {})
                done = message["type"] == "executing" and data.get("node") is None
                if done and data.get("prompt_id") == prompt_id:
                    return

        await asyncio.wait_for(collect(), timeout)
    return answer, messages


def run_prompt(
    url: str, prompt: dict[str, Any], client_id: str = "tester", timeout: float = 60, **extra: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """Submit a prompt and collect its websocket messages until ``executing`` node null."""
    body = {"prompt": prompt, "client_id": client_id, **extra}
    return asyncio.run(_run_and_listen(url, body, client_id, timeout))


def types_of(messages: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> list[str]:
    """Message types in order, without the ones in ``skip``."""
    return [m["type"] for m in messages if m["type"] not in skip]


def captured_types(name: str, label_part: str = "") -> list[str]:
    """Message types of the first websocket capture whose label contains ``label_part``."""
    for step in fixture(name)["steps"]:
        if step["kind"] == "websocket" and label_part in step["label"]:
            return [m["message"]["type"] for m in step["messages"] if m["frame"] == "text"]
    raise AssertionError(f"no websocket capture {label_part!r} in {name}")


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's streams and format of a media file."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
         "-of", "json", str(path)],
        capture_output=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    """Mono float32 samples of a media file's audio."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate),
         "-f", "f32le", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return np.frombuffer(result.stdout, dtype=np.float32)


def rms_db(samples: np.ndarray) -> float:
    """RMS level in dBFS (-120 for digital silence)."""
    value = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return 20 * np.log10(value) if value > 1e-6 else -120.0


def _frame(path: Path, seek: list[str]) -> np.ndarray:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1", "-f", "image2pipe",
         "-vcodec", "png", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return np.asarray(Image.open(io.BytesIO(result.stdout)).convert("RGB"), dtype=np.float32)


def first_frame(path: Path) -> np.ndarray:
    """The first video frame as an RGB array."""
    return _frame(path, [])


def last_frame(path: Path) -> np.ndarray:
    """The last video frame as an RGB array (what carry-forward extracts)."""
    return _frame(path, ["-sseof", "-0.05"])


def png_image(data: bytes) -> Image.Image:
    """Decode PNG bytes."""
    return Image.open(io.BytesIO(data))


def fetch_output(url: str, item: dict[str, str], into: Path) -> Path:
    """Download one history output item through ``/view``."""
    answer = httpx.get(f"{url}/view", params=item, timeout=30)
    assert answer.status_code == 200, answer.status_code
    path = into / item["filename"]
    path.write_bytes(answer.content)
    return path


def aac_clip(raw: Path, dest: Path) -> Path:
    """`raw` (a WAV) as a stereo 48 kHz AAC clip, as a user's voice file might come."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-c:a", "aac", "-b:a", "160k",
         "-ar", "48000", "-ac", "2", str(dest)],
        check=True,
    )  # fmt: skip
    return dest
