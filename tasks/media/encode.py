"""Encoder settings shared by every graph, so all outputs agree on format."""

from __future__ import annotations

from typing import Any

AUDIO_RATE = 48000

# Every audio encode is forced to 48 kHz: a resample anywhere (loudnorm's 96 kHz) breaks
# playback of the final AAC.
AUDIO_AAC: dict[str, Any] = {"acodec": "aac", "audio_bitrate": "192k", "ar": AUDIO_RATE}

# Players reject High 4:4:4; H.264 High@4.0 yuv420p plays everywhere.
VIDEO_DISTRIBUTION: dict[str, Any] = {
    "vcodec": "libx264",
    "pix_fmt": "yuv420p",
    "profile:v": "high",
    "level:v": "4.0",
    "crf": 18,
    "preset": "medium",
    # Concatenated sequences carry timestamps a fraction of a frame off at each cut; the
    # default constant-rate mode pads them with duplicated frames.
    "fps_mode": "passthrough",
}

# A grading master: 4:4:4 10-bit, still SDR (the model renders SDR whatever the encoding).
VIDEO_MASTER: dict[str, Any] = {
    "vcodec": "libx264",
    "pix_fmt": "yuv444p10le",
    "crf": 10,
    "preset": "medium",
    "fps_mode": "passthrough",
}

# moov before mdat, so playback starts before the whole file has downloaded.
FASTSTART: dict[str, Any] = {"movflags": "+faststart"}
