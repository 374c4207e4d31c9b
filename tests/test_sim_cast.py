"""The simulator makes the cast testable: voices per render or from a reference, every name
voiced, portraits drawn and carried into keyframes and renders.

Which voice spoke a line is measured independently of the simulator: the test speaks the
line itself with each palette voice (espeak-ng, as the convention documents it) and finds
the one whose waveform matches the rendered audio.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from PIL import Image

from sim.embedded import RunningSimulator, start_simulator
from sim.inventory import default_models, live_object_info
from sim.lines import Line, dialogue_lines, dominant_speaker
from sim.settings import SimSettings
from sim.validation import validate_prompt
from sim.voice_match import identify_file
from tests.sim_helpers import (
    aac_clip,
    decode_audio,
    fetch_output,
    first_frame,
    last_frame,
    png_bytes,
    png_image,
    relay_prompt,
    run_prompt,
    upload,
)

# The documented palette: (espeak-ng voice, pitch).
PALETTE = (("en+f1", 60), ("en+f3", 55), ("en+f4", 30), ("en+m1", 40), ("en+m2", 70),
           ("en+m7", 35))  # fmt: skip
RATE = 22_050  # espeak-ng's own rate: the rendered audio is compared at it
FPS = 24
MAYA, TOMAS = "We made it.", "Then we wait here for the rain."
TWO_SPEAKERS = f'MAYA says "{MAYA}" | TOMAS says "{TOMAS}"'  # TOMAS has more words
KEYFRAME = Path(__file__).resolve().parents[1] / "config" / "workflows" / "keyframe_t2i.json"
RED, BLUE = "cast_red.png", "cast_blue.png"


def _espeak(text: str, voice: str, pitch: int) -> np.ndarray:
    args = ["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), "-s", "165", "--stdin"]
    wav = subprocess.run(args, input=text.encode(), capture_output=True, check=True).stdout
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    assert rate == RATE
    return samples  # type: ignore[no-any-return]


def _best_match(track: np.ndarray, template: np.ndarray) -> float:
    """Peak normalised cross-correlation of ``template`` anywhere in ``track``."""
    if len(track) < len(template):
        return 0.0
    size = 1 << (len(track) + len(template)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(track, size) * np.conj(np.fft.rfft(template, size)), size)
    corr = corr[: len(track) - len(template) + 1]
    sums = np.concatenate([[0.0], np.cumsum(track.astype(np.float64) ** 2)])
    energy = sums[len(template) :] - sums[: -len(template)]
    return float(np.max(corr / (np.sqrt(np.maximum(energy, 0)) * np.linalg.norm(template) + 1e-9)))


def spoken_by(track: np.ndarray, text: str) -> tuple[str, int] | None:
    """The palette voice that spoke ``text`` in ``track`` (None if none clearly did)."""
    scores = {voice: _best_match(track, _espeak(text, *voice)) for voice in PALETTE}
    best = max(scores, key=lambda v: scores[v])
    return best if scores[best] > 0.8 else None


def _window(samples: np.ndarray, start_frame: int, end_frame: int) -> np.ndarray:
    return samples[int(start_frame / FPS * RATE) : int(end_frame / FPS * RATE)]


def _render(sim: RunningSimulator, prompt: dict[str, Any], into: Path) -> Path:
    answer, messages = run_prompt(sim.url, prompt)
    assert answer.status_code == 200, answer.text
    assert not answer.json().get("node_errors"), answer.text
    assert messages[-3]["type"] == "execution_success", messages[-3:]
    output = [m for m in messages if m["type"] == "executed"][-1]["data"]["output"]
    return fetch_output(sim.url, output["images"][0], into)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _pattern(first: tuple[int, int, int], second: tuple[int, int, int]) -> bytes:
    """A 96x128 picture of stripes in two pure colours no seeded keyframe ever shows."""
    pixels = np.zeros((128, 96, 3), dtype=np.uint8)
    pixels[:] = first
    pixels[::16] = second
    pixels[1::16] = second
    return _png(pixels)


def _share(frame: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """The fraction of ``frame``'s pixels within 40 of ``rgb`` in every channel."""
    return float(np.mean(np.all(np.abs(frame.astype(np.float32) - rgb) < 40, axis=-1)))


def _voice_clip(dest: Path, voice: tuple[str, int], text: str, seconds: float | None) -> Path:
    """``text`` in a palette voice as AAC in an m4a at 48 kHz, cut to ``seconds``."""
    raw = dest.with_suffix(".wav")
    samples = _espeak(text, *voice)
    if seconds is not None:
        start = int(np.flatnonzero(np.abs(samples) > 0.02)[0])
        samples = samples[start : start + int(seconds * RATE)]
    soundfile.write(raw, samples, RATE)
    return aac_clip(raw, dest)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with start_simulator(SimSettings(gpu_seconds_per_output_second=0)) as running:
        upload(running.url, "reelflow_start_frame.png", png_bytes(160, 120, (90, 110, 130)))
        upload(running.url, RED, _pattern((255, 0, 0), (255, 255, 255)))
        upload(running.url, BLUE, _pattern((0, 0, 255), (255, 255, 0)))
        yield running


def two_speakers(seed: int, prefix: str = "cast") -> dict[str, Any]:
    prompt = relay_prompt(
        width=128, height=96, frames=121, segment_lengths="49, 72", seed=seed,
        local_prompts=TWO_SPEAKERS,
    )  # fmt: skip
    prompt["44"]["inputs"]["filename_prefix"] = prefix
    return prompt


def with_reference(prompt: dict[str, Any], clip: str) -> dict[str, Any]:
    """The relay graph with an ID-LoRA and ``LTXVReferenceAudio`` on its model and conditioning."""
    prompt = copy.deepcopy(prompt)
    prompt["5"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
        "model": ["4", 0], "lora_name": "ltx-2.3-id-lora-talkvid-3k.safetensors",
        "strength_model": 1.0}}  # fmt: skip
    prompt["20"]["inputs"]["model"] = ["5", 0]
    prompt["50"] = {"class_type": "LoadAudio", "inputs": {"audio": clip}}
    prompt["51"] = {"class_type": "LTXVReferenceAudio", "inputs": {
        "model": ["20", 0], "positive": ["22", 0], "negative": ["22", 1],
        "reference_audio": ["50", 0], "audio_vae": ["3", 0], "identity_guidance_scale": 3.0,
        "start_percent": 0.0, "end_percent": 1.0}}  # fmt: skip
    prompt["33"]["inputs"].update(model=["51", 0], positive=["51", 1], negative=["51", 2])
    return prompt


def voices_of(video: Path) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """Who spoke MAYA's and TOMAS's lines of a ``two_speakers`` render."""
    samples = decode_audio(video, RATE)
    return spoken_by(_window(samples, 0, 49), MAYA), spoken_by(_window(samples, 49, 121), TOMAS)


@pytest.fixture(scope="module")
def seeded(sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Any]:
    """The voices of renders without a reference, by seed."""
    folder = tmp_path_factory.mktemp("seeded")
    return {seed: voices_of(_render(sim, two_speakers(seed), folder)) for seed in (11, 12, 13)}


def test_without_a_reference_each_render_picks_palette_voices_by_its_seed(
    sim: RunningSimulator, seeded: dict[int, Any], tmp_path: Path
) -> None:
    for maya, tomas in seeded.values():
        assert maya is not None and tomas is not None and maya != tomas
    again = voices_of(_render(sim, two_speakers(11, prefix="again"), tmp_path))
    assert again == seeded[11]
    assert len({maya for maya, _ in seeded.values()}) > 1


def test_a_reference_clip_gives_the_dominant_speaker_its_voice_in_every_render(
    sim: RunningSimulator, seeded: dict[int, Any], tmp_path: Path
) -> None:
    reference = next(voice for voice in PALETTE if voice not in seeded[11])
    clip = _voice_clip(tmp_path / "tomas.m4a", reference, "Nobody comes here in November.", 2.5)
    assert upload(sim.url, clip.name, clip.read_bytes()).status_code == 200
    for seed in (11, 12):
        video = _render(sim, with_reference(two_speakers(seed), clip.name), tmp_path)
        maya, tomas = voices_of(video)
        assert tomas == reference  # TOMAS has the most words
        assert maya is not None and maya != reference
        if seeded[seed][0] != reference:  # else she takes her next voice
            assert maya == seeded[seed][0]


def test_a_reference_that_is_not_a_palette_voice_is_used_anyway_and_logged(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    times = np.arange(3 * 48000) / 48000
    buzz = ((times * 220) % 1 - 0.5).astype(np.float32) * 0.3
    soundfile.write(tmp_path / "buzz.wav", buzz, 48000)
    upload(sim.url, "buzz.wav", (tmp_path / "buzz.wav").read_bytes())
    maya, tomas = voices_of(_render(sim, with_reference(two_speakers(21), "buzz.wav"), tmp_path))
    assert maya is not None and tomas is not None
    log = (sim.workdir / "sim.log").read_text(encoding="utf-8", errors="replace")
    assert "buzz.wav matches no simulator voice well" in log


def test_every_palette_voice_is_recognised_in_a_short_aac_clip(tmp_path: Path) -> None:
    for voice in PALETTE:
        text = "Where were you when the lights went out in the harbour?"
        match = identify_file(_voice_clip(tmp_path / f"{voice[0]}.m4a", voice, text, 1.5))
        assert (match.voice.name, match.voice.pitch) == voice
        assert match.close


def test_names_in_any_script_are_read_and_their_lines_spoken(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    said = [("甄嬛", "Bring the lamp."), ("Ólafur", "The tide is turning."),
            ("MARY-JANE", "Hold the rope."), ("O'BRIEN", "Not tonight.")]  # fmt: skip
    prompts = [f'A quiet hall. {name} says "{line}"' for name, line in said]
    assert [dialogue_lines(p) for p in prompts] == [[Line(n, t)] for n, t in said]
    prompt = relay_prompt(width=128, height=96, frames=193, segment_lengths="49, 48, 48, 48",
                          local_prompts=" | ".join(prompts))  # fmt: skip
    samples = decode_audio(_render(sim, prompt, tmp_path), RATE)
    edges = [0, 49, 97, 145, 193]
    voices = [spoken_by(_window(samples, a, b), line) for (_, line), a, b in
              zip(said, edges, edges[1:], strict=False)]  # fmt: skip
    assert None not in voices and len(set(voices)) == 4


def test_speakers_are_read_the_way_reelflow_and_hand_written_prompts_name_them() -> None:
    prompt = (
        'Night falls on the pier. Dr. Watson says "Look." Vincent van Gogh says "Stars." '
        'Maya turns to Tomas and MAYA says "Go." the old man says "Home now, all of you."'
    )
    lines = dialogue_lines(prompt)
    assert [line.speaker for line in lines] == [
        "Dr. Watson", "Vincent van Gogh", "MAYA", "the old man"
    ]  # fmt: skip
    assert dominant_speaker(lines) == "the old man"
    tie = [Line("A", "one two"), Line("B", "three four"), Line("A", "five"), Line("B", "six")]
    assert dominant_speaker(tie) == "A"  # equal words: the first to speak


def _keyframe(text: str, seed: int, prefix: str) -> dict[str, Any]:
    prompt = json.loads(KEYFRAME.read_text(encoding="utf-8"))
    prompt["27"]["inputs"]["text"] = text
    prompt["3"]["inputs"]["seed"] = seed
    prompt["13"]["inputs"].update(width=256, height=256)
    prompt["9"]["inputs"]["filename_prefix"] = prefix
    return prompt  # type: ignore[no-any-return]


def test_portraits_show_a_face_of_their_own_per_character(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    edda = "Portrait of EDDA, a lighthouse keeper in her sixties, grey braid. Front view."
    jonas = "Portrait of JONAS, a young fisherman with a red beard. Front view."

    def picture(text: str, prefix: str) -> np.ndarray:
        path = _render(sim, _keyframe(text, 5, prefix), tmp_path)
        return np.asarray(png_image(path.read_bytes()).convert("RGB"), dtype=np.float32)

    first, again, other = picture(edda, "edda"), picture(edda, "edda_again"), picture(jonas, "j")
    assert np.array_equal(first, again)
    face = (slice(64, 192), slice(64, 192))
    assert float(np.mean(np.abs(first[face] - other[face]))) > 15


def edit_keyframe(images: list[str], reference_latent: str | None = None) -> dict[str, Any]:
    """A Qwen-Image-Edit keyframe: the prompt's images (and a ReferenceLatent) in a new shot."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "UNETLoader", "inputs": {
            "unet_name": "qwen_image_edit_2509_fp8_e4m3fn.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader", "inputs": {
            "clip_name": "qwen_2.5_vl_7b_fp8_scaled.safetensors", "type": "qwen_image",
            "device": "default"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "qwen_image_vae.safetensors"}},
        "6": {"class_type": "TextEncodeQwenImageEditPlus", "inputs": {
            "clip": ["2", 0], "vae": ["3", 0], "prompt": "Both of them on the pier at dawn."}},
        "7": {"class_type": "TextEncodeQwenImageEditPlus", "inputs": {
            "clip": ["2", 0], "vae": ["3", 0], "prompt": ""}},
        "8": {"class_type": "EmptySD3LatentImage", "inputs": {
            "width": 384, "height": 256, "batch_size": 1}},
        "9": {"class_type": "ModelSamplingAuraFlow", "inputs": {"model": ["1", 0], "shift": 3.0}},
        "10": {"class_type": "KSampler", "inputs": {
            "model": ["9", 0], "seed": 8, "steps": 4, "cfg": 1.0, "sampler_name": "euler",
            "scheduler": "simple", "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["8", 0], "denoise": 1.0}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["3", 0]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "k"}},
    }  # fmt: skip
    for slot, name in enumerate(images, start=1):
        prompt[f"2{slot}"] = {"class_type": "LoadImage", "inputs": {"image": name}}
        for encoder in ("6", "7"):
            prompt[encoder]["inputs"][f"image{slot}"] = [f"2{slot}", 0]
    if reference_latent is not None:
        prompt["30"] = {"class_type": "LoadImage", "inputs": {"image": reference_latent}}
        prompt["31"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["30", 0], "vae": ["3", 0]}}
        prompt["32"] = {"class_type": "ReferenceLatent", "inputs": {
            "conditioning": ["6", 0], "latent": ["31", 0]}}  # fmt: skip
        prompt["10"]["inputs"]["positive"] = ["32", 0]
    return prompt


def test_an_edit_keyframe_carries_its_reference_pictures_side_by_side(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    path = _render(sim, edit_keyframe([RED, BLUE]), tmp_path)
    frame = np.asarray(png_image(path.read_bytes()).convert("RGB"))
    assert frame.shape == (256, 384, 3)
    top, left, right = frame[:128], frame[128:, :192], frame[128:, 192:]
    assert _share(left, (255, 0, 0)) > 0.15 and _share(right, (0, 0, 255)) > 0.15
    assert _share(left, (0, 0, 255)) == 0 and _share(right, (255, 0, 0)) == 0
    assert _share(top, (255, 0, 0)) == 0 and _share(top, (0, 0, 255)) == 0
    # The same picture through a ReferenceLatent, then as image1 again, is drawn once.
    path = _render(sim, edit_keyframe([], reference_latent=RED), tmp_path)
    frame = np.asarray(png_image(path.read_bytes()).convert("RGB"))
    assert _share(frame[128:], (255, 0, 0)) > 0.15 and _share(frame[:128], (255, 0, 0)) == 0


def guided_relay() -> dict[str, Any]:
    """Text-to-video relay with LTXVAddGuide images at the first and the last frame."""
    prompt = relay_prompt(width=128, height=96, frames=49, local_prompts='MAYA says "Go."',
                          segment_lengths="49")  # fmt: skip
    for node in ("10", "11", "13"):
        del prompt[node]
    prompt["60"] = {"class_type": "LoadImage", "inputs": {"image": RED}}
    prompt["61"] = {
        "class_type": "LTXVAddGuide",
        "inputs": {
            "positive": ["22", 0],
            "negative": ["22", 1],
            "vae": ["1", 2],
            "latent": ["12", 0],
            "image": ["60", 0],
            "frame_idx": 0,
            "strength": 1.0,
        },
    }
    prompt["62"] = {"class_type": "LoadImage", "inputs": {"image": BLUE}}
    prompt["63"] = {
        "class_type": "LTXVAddGuide",
        "inputs": {
            "positive": ["61", 0],
            "negative": ["61", 1],
            "vae": ["1", 2],
            "latent": ["61", 2],
            "image": ["62", 0],
            "frame_idx": -1,
            "strength": 1.0,
        },
    }
    prompt["64"] = {"class_type": "LTXVCropGuides", "inputs": {
        "positive": ["63", 0], "negative": ["63", 1], "latent": ["40", 0]}}  # fmt: skip
    prompt["15"]["inputs"]["video_latent"] = ["63", 2]
    prompt["33"]["inputs"].update(positive=["63", 0], negative=["63", 1])
    prompt["41"]["inputs"]["samples"] = ["64", 2]
    return prompt


def test_image_guides_are_seen_at_their_frames(sim: RunningSimulator, tmp_path: Path) -> None:
    video = _render(sim, guided_relay(), tmp_path)
    first, last = first_frame(video), last_frame(video)
    assert _share(first, (255, 0, 0)) > 0.3 and _share(first, (0, 0, 255)) < 0.02
    assert _share(last, (0, 0, 255)) > 0.3 and _share(last, (255, 0, 0)) < 0.02


def test_the_cast_graphs_validate_against_the_captured_object_info(sim: RunningSimulator) -> None:
    info = live_object_info(default_models(), sim.input_dir)
    for prompt in (with_reference(two_speakers(1), "voice.m4a"), edit_keyframe([RED, BLUE], RED),
                   guided_relay()):  # fmt: skip
        verdict = validate_prompt(copy.deepcopy(prompt), info)
        assert verdict.ok and not verdict.node_errors, verdict.node_errors
