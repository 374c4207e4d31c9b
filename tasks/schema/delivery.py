"""Delivery choices named in the screenplay, the run's options and the plan.

The profiles themselves (targets, tolerances, ceilings) live with their meter in
`tasks.media.loudness`; here are only their names, so plain data can name a choice.
"""

from __future__ import annotations

from typing import Literal, get_args

ProfileName = Literal["ebu-r128", "streaming", "atsc-a85", "apple", "dialogue-gated"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
DEFAULT_PROFILE: ProfileName = "ebu-r128"

MasterKind = Literal["none", "yuv444", "prores", "dnxhr"]
"""none; yuv444: an H.264 4:4:4 10-bit grading master; prores: ProRes 422 HQ; dnxhr: DNxHR HQ."""
