"""sim_voice_match: how well the simulator recognises a palette voice in a reference clip.

Every palette voice speaks 9 texts (none of them the calibration text) the way a render
carries them: the seeded level spread (0 to -20 dB), room tone at -66 dBFS, an AAC round
trip at 48 kHz stereo. From each, clips of 1, 1.5, 2, 3 and 5 s are cut (3 random cuts per
length where the sentence is long enough, at any sample, not only at word boundaries) and
identified with `sim.voice_match.identify`. Other espeak-ng voices, noise and a buzz show
how clips that are not palette voices score, and whether they pass for one (`close`).

Prints the accuracy per clip length, the score ranges, the calibration and per-clip times,
and the accuracy on clips of 1.5 s and more last.

    .venv/bin/python -m bench.sim_voice_match
"""

from __future__ import annotations

import subprocess
import time

import numpy as np

from sim.voice_match import GOOD_MATCH, calibrated, identify
from sim.voices import PALETTE, SAMPLE_RATE, Voice, synthesise

SENTENCES = (
    "We made it just in time.",
    "I have been waiting on this rooftop for a very long time and I will tell you why.",
    "Bring the lamp, the tide is turning fast tonight.",
    "Where were you when the lights went out in the harbour?",
    "Seventy seven bottles of green ink stood on the shelf.",
    "Do not open that door, whatever you hear behind it, until morning comes.",
    "My grandmother kept bees on the roof of a building in Marseille.",
    "Hand me the flare.",
    "The mail boat never came that winter, so we ate the last of the apples. Quiet now, "
    "someone is listening at the window, and the candle is almost out.",
)
LENGTHS = (1.0, 1.5, 2.0, 3.0, 5.0)
CUTS = 3
STRANGERS = (
    Voice("en+m3", 50), Voice("en+f2", 45), Voice("en+f5", 50), Voice("en+klatt", 50),
    Voice("en+whisper", 50), Voice("en-us+m4", 25), Voice("de", 50), Voice("fr+f2", 60),
)  # fmt: skip


def as_rendered(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``speech`` as a render carries it: level spread, room tone, AAC at 48 kHz stereo."""
    gain = 10 ** ((-3.0 - 20.0 * rng.random()) / 20)
    pad = np.zeros(SAMPLE_RATE // 4, dtype=np.float32)
    track = np.concatenate([pad, speech * gain, pad])
    track += rng.normal(0.0, 10 ** (-66 / 20), len(track)).astype(np.float32)
    stereo = np.ascontiguousarray(np.stack([track, track], axis=1), dtype=np.float32)
    encode = ["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "2"]
    encode += ["-i", "-", "-c:a", "aac", "-b:a", "160k", "-f", "adts", "-"]
    aac = subprocess.run(encode, input=stereo.tobytes(), capture_output=True, check=True)
    decode = ["ffmpeg", "-v", "error", "-f", "aac", "-i", "-", "-ac", "1"]
    decode += ["-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    raw = subprocess.run(decode, input=aac.stdout, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.float32)


def speech_span(samples: np.ndarray) -> tuple[int, int]:
    """First and last sample of the 10 ms windows within 35 dB of the loudest."""
    window = SAMPLE_RATE // 100
    count = len(samples) // window
    level = 10 * np.log10(
        np.mean(samples[: count * window].reshape(count, window) ** 2, axis=1) + 1e-12
    )
    loud = np.flatnonzero(level > level.max() - 35)
    return int(loud[0]) * window, int(loud[-1] + 1) * window


def clips(samples: np.ndarray, rng: np.random.Generator) -> list[tuple[float, np.ndarray]]:
    """(length, clip) pairs cut from a rendered sentence."""
    start, end = speech_span(samples)
    found: list[tuple[float, np.ndarray]] = []
    for length in LENGTHS:
        size = int(length * SAMPLE_RATE)
        if end - start < size:
            continue
        for _ in range(CUTS):
            at = int(rng.integers(start, end - size + 1))
            found.append((length, samples[at : at + size]))
    return found


def main() -> None:
    began = time.perf_counter()
    calibrated()
    calibration_s = time.perf_counter() - began
    rng = np.random.default_rng(2026)
    right: dict[float, list[bool]] = {length: [] for length in LENGTHS}
    own_scores: list[float] = []
    own_far = 0
    timings: list[float] = []
    for voice in PALETTE:
        for sentence in SENTENCES:
            rendered = as_rendered(synthesise(sentence, voice), rng)
            for length, clip in clips(rendered, rng):
                began = time.perf_counter()
                match = identify(clip, SAMPLE_RATE)
                timings.append(time.perf_counter() - began)
                right[length].append(match.voice == voice)
                own_scores.append(match.score)
                own_far += not match.close
                if match.voice != voice:
                    print(f"miss: {voice.label} heard as {match.voice.label} ({length} s)")
    stranger_scores = []
    stranger_close = 0
    for voice in STRANGERS:
        for sentence in SENTENCES[:4]:
            match = identify(as_rendered(synthesise(sentence, voice), rng), SAMPLE_RATE)
            stranger_scores.append(match.score)
            stranger_close += match.close
    noise = identify(rng.normal(0, 0.1, 3 * SAMPLE_RATE).astype(np.float32), SAMPLE_RATE)
    times = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    buzz = identify(((times * 220) % 1 - 0.5).astype(np.float32), SAMPLE_RATE)
    for length, hits in right.items():
        print(f"{length:>4} s clips: {sum(hits)}/{len(hits)} right ({np.mean(hits):.1%})")
    print(f"palette clips score {min(own_scores):.2f} .. {max(own_scores):.2f}")
    print(f"other voices score {min(stranger_scores):.2f} .. {max(stranger_scores):.2f}")
    print(f"GOOD_MATCH = {GOOD_MATCH}; palette clips not close: {own_far}/{len(own_scores)}")
    print(f"other voices taken for a palette voice: {stranger_close}/{len(stranger_scores)}")
    for name, match in (("white noise", noise), ("a 220 Hz buzz", buzz)):
        print(f"{name}: score {match.score:.2f}, spread {match.spread:.0f}, close {match.close}")
    print(f"calibration {calibration_s:.2f} s once; {np.mean(timings) * 1000:.0f} ms per clip")
    long_hits = [hit for length, hits in right.items() if length >= 1.5 for hit in hits]
    print(f"accuracy on clips >= 1.5 s: {sum(long_hits)}/{len(long_hits)}")


if __name__ == "__main__":
    main()
