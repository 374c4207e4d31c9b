"""Every file of a delivery with what it is, in one order, and the loudness in one sentence:
the report's links, the review page's downloads and the end report all read them here."""

from __future__ import annotations

from pathlib import Path

from tasks.schema.outcomes import Deliverables
from tasks.schema.record import DeliveryLoudness

MASTER_LABELS = {
    "yuv444": "Grading master (H.264 4:4:4 10-bit, SDR)",
    "prores": "Mezzanine master (ProRes 422 HQ, PCM 48 kHz)",
    "dnxhr": "Mezzanine master (DNxHR HQ, PCM 48 kHz)",
}
SUBTITLE_LABELS = {"srt": "Subtitles (SRT)", "vtt": "Subtitles (WebVTT)"}
TIMELINE_LABELS = {
    "otio": "Timeline (OpenTimelineIO)",
    "fcpxml": "Timeline (FCPXML, Final Cut Pro)",
    "xml": "Timeline (FCP 7 XML, Premiere/Resolve)",
    "edl": "Edit decision list (CMX3600 EDL)",
}


def deliverable_files(delivered: Deliverables) -> list[tuple[str, Path]]:
    """(label, path) of every media file and record of `delivered` but its sequences."""
    film = delivered.cut
    files: list[tuple[str, Path | None]] = [
        ("Film (H.264, AAC 48 kHz)", delivered.film),
        (MASTER_LABELS.get(film.master_kind, "Master"), delivered.master),
        ("Film with burnt-in subtitles", delivered.subtitled),
        *((SUBTITLE_LABELS[key], path) for key, path in delivered.subtitles.items()),
        ("Dialogue stem (WAV 48 kHz 24-bit)", delivered.dialogue_stem),
        ("Music stem (WAV 48 kHz 24-bit, at the mix's score gain)", delivered.music_stem),
        ("Score (FLAC 48 kHz)", delivered.score),
        *((TIMELINE_LABELS[key], path) for key, path in delivered.timelines.items()),
        ("Contact sheet", delivered.contact_sheet),
        ("Manifest", delivered.manifest),
    ]
    return [(label, path) for label, path in files if path is not None]


def loudness_sentence(loudness: DeliveryLoudness | None) -> str:
    """The film's delivery loudness, before and after, in one line of text."""
    if loudness is None:
        return "Loudness: not measured (no delivery profile)."
    on = "dialogue-gated" if loudness.measured_on == "dialogue" else "programme"
    verdict = "meets it" if loudness.meets_profile else "does NOT meet it"
    limiter = (
        f", true-peak limiter at {loudness.limiter_ceiling_dbtp:.1f} dBTP"
        if loudness.limiter_ceiling_dbtp is not None
        else ""
    )
    applied = (
        f"gain {loudness.gain_db:+.1f} dB{limiter}"
        if loudness.outcome in ("gain", "gain_and_limit")
        else "left unchanged"
    )
    return (
        f"Loudness ({loudness.profile}: {loudness.target_lufs:g} LUFS "
        f"±{loudness.tolerance_lu:g}, ≤ {loudness.ceiling_dbtp:g} dBTP, {on}): "
        f"{loudness.judged_before_lufs:.1f} LUFS / {loudness.true_peak_before_dbtp:.1f} dBTP "
        f"before, {loudness.judged_after_lufs:.1f} LUFS / "
        f"{loudness.true_peak_after_dbtp:.1f} dBTP after ({applied}); loudness range "
        f"{loudness.loudness_range_lu:.1f} LU; {verdict}"
        + ("." if loudness.meets_profile else f": {loudness.reason}.")
    )
