"""Every ffmpeg, ffprobe and PyAV operation reelflow performs, behind one import."""

from tasks.media.audio import (
    SILENCE_FLOOR_LUFS,
    integrated_loudness,
    read_audio,
    true_peak_dbtp,
)
from tasks.media.edit import (
    concat_copy,
    concat_copy_args,
    concat_list_entry,
    crossfade_concat,
    crossfade_concat_args,
    crossfade_offsets,
    cut_voice,
    mute_all,
    mute_range,
    mute_range_args,
    replace_audio,
)
from tasks.media.errors import DiskFull, MediaError, MediaInvalid
from tasks.media.frames import (
    clip_thumbnails,
    contact_sheet,
    extract_last_frame,
    first_frame,
    frame_drift,
)
from tasks.media.mix import assemble_score, assemble_score_args, mix_and_encode, mix_and_encode_args
from tasks.media.probe import AudioInfo, MediaInfo, VideoInfo, probe
from tasks.media.run import atomic_output, run_ffmpeg
from tasks.media.verify import (
    check_distribution,
    is_faststart,
    top_level_boxes,
    verify_decodes,
    verify_film,
)

__all__ = [
    "SILENCE_FLOOR_LUFS",
    "AudioInfo",
    "DiskFull",
    "MediaError",
    "MediaInfo",
    "MediaInvalid",
    "VideoInfo",
    "assemble_score",
    "assemble_score_args",
    "atomic_output",
    "check_distribution",
    "clip_thumbnails",
    "concat_copy",
    "concat_copy_args",
    "concat_list_entry",
    "contact_sheet",
    "crossfade_concat",
    "crossfade_concat_args",
    "crossfade_offsets",
    "cut_voice",
    "extract_last_frame",
    "first_frame",
    "frame_drift",
    "integrated_loudness",
    "is_faststart",
    "mix_and_encode",
    "mix_and_encode_args",
    "mute_all",
    "mute_range",
    "mute_range_args",
    "probe",
    "read_audio",
    "replace_audio",
    "run_ffmpeg",
    "top_level_boxes",
    "true_peak_dbtp",
    "verify_decodes",
    "verify_film",
]
