"""voice_check: what the cast's voice check costs per spoken line, and how well it separates
the simulator's espeak-ng voices.

Cost (default): decode a 2-4 s AAC line at 16 kHz, embed it, compare it with a cached
reference; the model load (sha256 check, read, build) is amortised over the lines. Goals:
<= 0.5 s per line on two cores, < 500 MB for the model.

Calibration (`--calibrate`, ~2 min): 12 espeak-ng voices x 4 lines against a 5 s reference
of each voice, as clean lines, as AAC round trips at 48 kHz (with the simulator's level
spread and room tone), and as 1-3 s snippets cut by the embedded ASR's word timestamps.
Prints the similarity distributions and the error rates at `SAME_VOICE_THRESHOLD`.

    .venv/bin/python -m bench.voice_check [--lines 12] [--calibrate]
"""

from __future__ import annotations

import io
import itertools
import os
import resource
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from scipy.signal import resample_poly

from bench import common
from tasks.cast.voice import (
    SAME_VOICE_THRESHOLD,
    bundled_weights,
    embed,
    load_voice_encoder,
    match_voice,
)
from tasks.media import read_audio

SECONDS_GOAL = 0.5
MEMORY_GOAL_MB = 500.0
RATE = 48_000

# (espeak-ng variant, pitch): distinct variants at assorted pitches, plus near-twins of
# them: the same variant at another pitch, and f5, whose formants are f2's.
VOICES = (
    ("m1", 40), ("m3", 50), ("m7", 35), ("f1", 60), ("f2", 45), ("f3", 55),
    ("f4", 30), ("m2", 70), ("f5", 50), ("m4", 25), ("m1", 70), ("f2", 25),
)  # fmt: skip
SAME_FORMANTS = ({"f2", "f5"},)
REFERENCE = (
    "The lighthouse keeper climbed the stairs before dawn. "
    "Nobody comes to the island in November, not even the mail boat."
)
LINES = (
    "Bring the lamp, the tide is turning fast tonight.",
    "I never told her where the money was hidden.",
    "Look at the boats, they are coming back without sails.",
    "We should leave before the storm reaches the harbour.",
)
SNIPPETS = ((1.0, 1.6), (1.6, 2.4), (2.4, 3.2))
"""Snippet lengths (s) cut from each line by word timestamps, as the pipeline cuts lines."""


@dataclass(frozen=True)
class Voice:
    variant: str
    pitch: int

    @property
    def name(self) -> str:
        return f"{self.variant}_p{self.pitch}"

    def near_twin_of(self, other: Voice) -> bool:
        pair = {self.variant, other.variant}
        return self.variant == other.variant or any(pair == twins for twins in SAME_FORMANTS)


def speak(voice: Voice, text: str) -> np.ndarray:
    """Mono float32 at 48 kHz, peak 1.0, as the simulator speaks a line."""
    result = subprocess.run(
        ["espeak-ng", "--stdout", "-v", f"en-us+{voice.variant}", "-p", str(voice.pitch),
         "-s", "165", "--stdin"],
        input=text.encode(), capture_output=True, check=True,
    )  # fmt: skip
    samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    common_rate = gcd(rate, RATE)
    samples = resample_poly(samples, RATE // common_rate, rate // common_rate)
    return (samples / np.max(np.abs(samples))).astype(np.float32)


def aac_round_trip(samples: np.ndarray, dest: Path, rng: np.random.Generator) -> Path:
    """The line as a render carries it: -3 to -23 dB, room tone at -66 dBFS, AAC at 48 kHz."""
    gain = 10 ** ((-3.0 - 20.0 * rng.random()) / 20)
    tone = rng.normal(0.0, 10 ** (-66 / 20), len(samples))
    wav = dest.with_suffix(".wav")
    soundfile.write(wav, (samples * gain + tone).astype(np.float32), RATE)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "160k",
         "-ar", str(RATE), "-ac", "2", str(dest)],
        check=True,
    )  # fmt: skip
    wav.unlink()
    return dest


def _status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so the peak is the check's alone.
    Path("/proc/self/clear_refs").write_text("5")


def measure_cost(folder: Path, count: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    voices = [Voice(v, p) for v, p in VOICES]
    clips = []
    for index in range(count):
        voice = voices[index % len(voices)]
        text = LINES[index % len(LINES)]
        clips.append(aac_round_trip(speak(voice, text), folder / f"line{index}.m4a", rng))
    reference_audio = speak(voices[0], REFERENCE)

    _reset_peak()
    rss_before = _status_mb("VmRSS")
    started = time.perf_counter()
    encoder = load_voice_encoder(bundled_weights())
    load_s = time.perf_counter() - started
    resident_mb = _status_mb("VmRSS") - rss_before
    reference = embed(reference_audio, RATE)

    decode_s: list[float] = []
    embed_s: list[float] = []
    durations: list[float] = []
    for clip in clips:
        started = time.perf_counter()
        samples = read_audio(clip, rate=16_000, mono=True)
        decoded = time.perf_counter()
        match_voice(embed(samples, 16_000), reference)
        decode_s.append(decoded - started)
        embed_s.append(time.perf_counter() - decoded)
        durations.append(len(samples) / 16_000)
    per_line = (load_s + sum(decode_s) + sum(embed_s)) / count
    check_peak_mb = _status_mb("VmHWM") - rss_before
    return {
        "seconds_per_line": per_line,
        "goal_s": SECONDS_GOAL,
        "verdict": common.verdict(per_line, SECONDS_GOAL),
        "load_s": load_s,
        "parameters_mb": encoder.parameter_bytes / 2**20,
        "model_resident_mb": resident_mb,
        "check_peak_mb": check_peak_mb,
        "memory_verdict": common.verdict(check_peak_mb, MEMORY_GOAL_MB),
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "line_seconds": common.summary(durations),
        "decode_s": common.summary(decode_s),
        "embed_s": common.summary(embed_s),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1min": os.getloadavg()[0],  # other work on the shared cores
        "lines": count,
    }


def _snippets(clip: Path, samples: np.ndarray) -> list[np.ndarray]:
    from tasks.runtime.asr import EmbeddedTranscriber

    words = [w for s in EmbeddedTranscriber().transcribe(clip).segments for w in s.words]
    cuts: list[np.ndarray] = []
    for low, high in SNIPPETS:
        spans = (
            (a.start, b.end)
            for i, a in enumerate(words)
            for b in words[i:]
            if low <= b.end - a.start < high
        )
        span = next(spans, None)
        if span is not None:
            cuts.append(samples[int(span[0] * 16_000) : int(span[1] * 16_000)])
    return cuts


def calibrate(folder: Path) -> dict[str, Any]:
    """Similarities of every line kind against every voice's reference."""
    rng = np.random.default_rng(7)
    voices = [Voice(v, p) for v, p in VOICES]
    references = {v: embed(speak(v, REFERENCE), RATE) for v in voices}
    lines: dict[str, list[tuple[Voice, np.ndarray]]] = {"clean line": [], "AAC line": []}
    lines.update({f"ASR cut {lo}-{hi} s": [] for lo, hi in SNIPPETS})
    for voice, (number, text) in itertools.product(voices, enumerate(LINES)):
        clean = speak(voice, text)
        lines["clean line"].append((voice, embed(clean, RATE)))
        clip = aac_round_trip(clean, folder / f"{voice.name}_{number}.m4a", rng)
        decoded = read_audio(clip, rate=16_000, mono=True)[:, 0]
        lines["AAC line"].append((voice, embed(decoded, 16_000)))
        for (low, high), cut in zip(SNIPPETS, _snippets(clip, decoded), strict=False):
            lines[f"ASR cut {low}-{high} s"].append((voice, embed(cut, 16_000)))
    rows = {kind: _rates(pairs, references) for kind, pairs in lines.items()}
    rows["clean line vs clean line"] = _line_pairs(lines["clean line"])
    return rows


def _rates(
    pairs: Sequence[tuple[Voice, np.ndarray]], references: dict[Voice, np.ndarray]
) -> dict[str, Any]:
    scores: dict[str, list[float]] = {"same": [], "different": [], "near_twin": []}
    for voice, line in pairs:
        for other, reference in references.items():
            scores[_relation(voice, other)].append(match_voice(line, reference).similarity)
    return _summarise(scores)


def _line_pairs(pairs: Sequence[tuple[Voice, np.ndarray]]) -> dict[str, Any]:
    scores: dict[str, list[float]] = {"same": [], "different": [], "near_twin": []}
    for (a, line_a), (b, line_b) in itertools.combinations(pairs, 2):
        scores[_relation(a, b)].append(match_voice(line_a, line_b).similarity)
    return _summarise(scores)


def _relation(a: Voice, b: Voice) -> str:
    if a == b:
        return "same"
    return "near_twin" if a.near_twin_of(b) else "different"


def _summarise(scores: dict[str, list[float]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for relation, values in scores.items():
        array = np.array(values)
        row[relation] = {
            "n": len(values),
            "min": float(array.min()),
            "median": float(np.median(array)),
            "max": float(array.max()),
        }
    row["wrong_voice_on_same"] = float(np.mean(np.array(scores["same"]) < SAME_VOICE_THRESHOLD))
    for relation in ("different", "near_twin"):
        passed = np.array(scores[relation]) >= SAME_VOICE_THRESHOLD
        row[f"same_voice_on_{relation}"] = float(np.mean(passed))
    return row


def print_calibration(rows: dict[str, Any]) -> None:
    print(f"threshold {SAME_VOICE_THRESHOLD}: similarity min / median / max (n)")
    header = f"{'line kind':26s} {'same voice':24s} {'different voice':24s} {'near twin':24s}"
    print(header + "  miss  false-accept (different, twin)")
    for kind, row in rows.items():
        cells = [
            f"{row[r]['min']:.2f} / {row[r]['median']:.2f} / {row[r]['max']:.2f} ({row[r]['n']})"
            for r in ("same", "different", "near_twin")
        ]
        print(
            f"{kind:26s} {cells[0]:24s} {cells[1]:24s} {cells[2]:24s}  "
            f"{row['wrong_voice_on_same']:.1%}  {row['same_voice_on_different']:.1%}, "
            f"{row['same_voice_on_near_twin']:.1%}"
        )


def main() -> None:
    arguments = common.parser(__doc__ or "", rates=False)
    arguments.add_argument("--lines", type=int, default=12, help="spoken lines to check")
    arguments.add_argument("--calibrate", action="store_true", help="also print calibration")
    options = arguments.parse_args()
    with common.workdir(options.workdir, "voice_check") as folder:
        figure = measure_cost(folder, options.lines)
        rows = calibrate(folder) if options.calibrate else None
    details: dict[str, Any] = {"threshold": SAME_VOICE_THRESHOLD}
    if rows is not None:
        details["calibration"] = rows
        print_calibration(rows)
    path = common.write_result("voice_check", figure, details)
    print(
        f"lines: {figure['lines']}, {figure['line_seconds']} s of speech; cores "
        f"{figure['cores']}, load average {figure['load_average_1min']:.1f} at the end"
    )
    print(f"decode per line (s): {figure['decode_s']}")
    print(f"embed + compare per line (s): {figure['embed_s']}")
    print(f"model load (sha256 + read + build): {figure['load_s']:.3f} s")
    print(
        f"model memory: {figure['parameters_mb']:.1f} MB of parameters, "
        f"{figure['model_resident_mb']:.1f} MB resident after load; peak of load + checks "
        f"{figure['check_peak_mb']:.1f} MB (goal < {MEMORY_GOAL_MB:.0f}: "
        f"{figure['memory_verdict']}); whole process peak "
        f"{figure['process_peak_rss_mb']:.0f} MB (Prefect, PyAV and the bench's imports)"
    )
    print(f"results: {path}")
    print(
        f"voice_check: {figure['seconds_per_line']:.3f} s per spoken line, load amortised "
        f"(goal <= {SECONDS_GOAL}: {figure['verdict']})"
    )


if __name__ == "__main__":
    main()
