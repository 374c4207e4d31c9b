"""A second loudness meter for the tests: ffmpeg's `ebur128` filter, read from its summary.

reelflow's own meter is pyloudnorm; ffmpeg's ebur128 is a separate BS.1770 implementation with
its own true-peak oversampling, so agreement between the two is evidence, not an echo.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

METERS_AGREE_LU = 0.2


@dataclass(frozen=True)
class Ebur128:
    """ffmpeg ebur128's summary: integrated loudness, loudness range, true peak."""

    integrated: float
    lra: float
    true_peak: float


def ebur128(path: Path, regions: Sequence[tuple[float, float]] = ()) -> Ebur128:
    """Measure `path`'s audio with ffmpeg's ebur128 (peak=true), over `regions` if given."""
    if regions:
        parts = ";".join(
            f"[0:a]atrim={a}:{b},asetpts=PTS-STARTPTS[p{i}]" for i, (a, b) in enumerate(regions)
        )
        inputs = "".join(f"[p{i}]" for i in range(len(regions)))
        graph = f"{parts};{inputs}concat=n={len(regions)}:v=0:a=1,ebur128=peak=true"
    else:
        graph = "[0:a]ebur128=peak=true"
    command = ["ffmpeg", "-hide_banner", "-nostats", "-nostdin", "-i", str(path)]
    done = subprocess.run(
        [*command, "-filter_complex", graph, "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = done.stderr[done.stderr.rindex("Summary:") :]

    def field(label: str, unit: str) -> float:
        found = re.search(rf"{label}:\s+(-?[\d.]+|-inf) {unit}", summary)
        assert found, f"no {label} in ebur128's summary:\n{summary}"
        return float(found.group(1))

    return Ebur128(field("I", "LUFS"), field("LRA", "LU"), field("Peak", "dBFS"))
