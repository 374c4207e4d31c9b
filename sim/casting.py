"""The cast in the simulator: voices per render or from a reference, portraits, carried pictures.

The conventions a workflow can rely on (the modules named hold the details):

Voices (``sim.voices``, ``sim.lines``, ``sim.voice_match``)
    * Lines: every ``NAME says "line"`` of the relay segment prompts is spoken, whatever
      script NAME is written in (``甄嬛``, ``Ólafur``, ``MARY-JANE``, ``O'BRIEN``); the
      name itself is not spoken. How NAME is read: ``sim.lines``.
    * Palette: ``en+f1 -p 60``, ``en+f3 -p 55``, ``en+f4 -p 30``, ``en+m1 -p 40``,
      ``en+m2 -p 70``, ``en+m7 -p 35`` (espeak-ng, 165 words a minute).
    * No reference: each speaker's voice is drawn from the palette by the render's seed
      (``RandomNoise.noise_seed``, else the sampler's ``seed``/``noise_seed``) and the
      name: the same seed gives the same voices, another seed usually others; speakers of
      one render never share a voice (up to six).
    * Reference: when the output depends on an ``LTXVReferenceAudio`` (its MODEL or its
      conditioning reaches the sampler) whose ``reference_audio`` comes (through any
      nodes, e.g. a trim, which is not applied) from a ``LoadAudio`` of an uploaded clip,
      the sequence's dominant speaker speaks with the palette voice that clip sounds like.
      Dominant speaker: the most words (``str.split``) over all its lines in the whole
      sequence, ties to the one who speaks first. The others keep their seeded voice
      (their next one if it is the reference's). ``identity_guidance_scale`` is not
      read: any reference is followed fully. One reference voice per render, as the node
      holds one clip: with several chained ``LTXVReferenceAudio`` nodes the one nearest
      the sampler (the last applied) wins.
    * A reference that sounds like no palette voice (no pitch, no speech, too far) is
      still followed with the nearest voice, and the simulator logs a WARNING naming the
      clip ("... matches no simulator voice well ..."); a recognised one is logged at
      INFO, the voice of each speaker at DEBUG. ``python -m sim`` logs at INFO to its
      output (``sim.log`` in an embedded simulator's folder).

Pictures (``sim.graph_refs``, ``sim.pictures``)
    * Portrait: a text-to-image keyframe (``EmptySD3LatentImage``/``EmptyLatentImage``,
      a sampler, a ``CLIPTextEncode``) with the word ``portrait`` (any case) among its
      prompt's first eight words ("Portrait of EDDA, ...") draws a face chosen by a hash
      of the prompt; the seed shades the background.
    * Reference keyframe: ``TextEncodeQwenImageEditPlus`` ``image1..image3`` (or
      ``TextEncodeQwenImageEdit.image``) and ``ReferenceLatent.latent`` (via
      ``VAEEncode``) on the sampler's positive side, each traced to a ``LoadImage``: the
      keyframe (size from its empty latent) shows each picture, scaled to fit, side by
      side in its lower half, in slot order then ReferenceLatent order, once each.
    * Image guides: each ``LTXVAddGuide`` the video depends on, with a ``LoadImage``
      upstream of its ``image``, is shown whole (scaled to fit, proportions kept) from its
      ``frame_idx`` (negative: from the end) until a later guide; a guide at frame 0 of a
      render without an image-to-video start picture is its first frame.
    * Any other graph renders as before.
"""

from __future__ import annotations

import logging

from sim.folders import Folders
from sim.graph import VideoSpec
from sim.lines import Line, dialogue_lines, dominant_speaker, speakers_in_order
from sim.voice_match import identify_file
from sim.voices import Voice, cast_voices

log = logging.getLogger(__name__)


def render_lines(spec: VideoSpec) -> list[Line]:
    """Every spoken line of the render, segment after segment."""
    return [line for segment in spec.segments for line in dialogue_lines(segment.prompt)]


def reference_voice(spec: VideoSpec, folders: Folders) -> Voice | None:
    """The palette voice the render's reference clip sounds like (None without one)."""
    if spec.reference_audio is None:
        return None
    path = folders.resolve(spec.reference_audio)
    if path is None:
        return None
    match = identify_file(path)
    if match.close:
        log.info(
            "reference voice %s sounds like %s (score %.2f)",
            spec.reference_audio, match.voice.label, match.score,
        )  # fmt: skip
    else:
        log.warning(
            "reference voice %s matches no simulator voice well (score %.2f, pitch %s); "
            "speaking with the nearest, %s",
            spec.reference_audio, match.score,
            f"{match.pitch_hz:.0f} Hz" if match.pitch_hz else "none", match.voice.label,
        )  # fmt: skip
    return match.voice


def cast_render(spec: VideoSpec, folders: Folders) -> dict[str, Voice]:
    """Each speaker's voice in this render (see ``sim.voices`` for the rule)."""
    lines = render_lines(spec)
    if not lines:
        return {}
    reference = reference_voice(spec, folders)
    dominant = dominant_speaker(lines) if reference is not None else None
    cast = cast_voices(speakers_in_order(lines), spec.seed, reference, dominant)
    log.debug(
        "seed %d voices: %s", spec.seed, ", ".join(f"{n}: {v.label}" for n, v in cast.items())
    )
    return cast
