"""Workflow templates (ComfyUI API-format JSON) filled through node-title bindings.

A user can export their own tuned graph with "Save (API)", give a few nodes the
``reelflow.*`` titles (``tasks/comfyui/titles.py``), and reelflow fills it exactly like the
built-in ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tasks.comfyui.errors import TemplateError
from tasks.comfyui.models import ModelSet
from tasks.comfyui.titles import START_IMAGE, TITLES, VOICE, Slot, TemplateKind
from tasks.runtime.files import CONFIG_DIR

WORKFLOWS_DIR = CONFIG_DIR / "workflows"

Bindings = Mapping[str, Mapping[str, Any]]

# Colours only matter to the browser timeline editor, which reads timeline_data.
_SEGMENT_COLOURS = ("#4f8edc", "#e07b3a", "#5fb36b", "#c75ac2", "#d9c24a", "#46b9c0")
# ACE-Step generates at most about this much music per prompt (PRODUCTION_NOTES).
MAX_CUE_SECONDS = 240.0


@dataclass(frozen=True)
class Workflow:
    """One API-format template; ``template_hash`` is the sha256 of its canonical JSON.

    ``origin`` says where it came from (a file's path, or a saved block) for messages and
    the manifest; ``kind`` is set once the template was checked for that kind's titles, and
    lets a title's value reach whichever of its input names the node has.
    """

    name: str
    nodes: dict[str, Any]
    template_hash: str = field(compare=False)
    origin: str = field(default="", compare=False)
    kind: TemplateKind | None = field(default=None, compare=False)

    @classmethod
    def load(cls, path: Path) -> Workflow:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TemplateError(f"{path}: cannot read workflow template: {exc}") from exc
        return cls.from_document(document, name=path.name, origin=str(path.resolve()))

    @classmethod
    def from_document(cls, document: Any, *, name: str, origin: str) -> Workflow:
        """A template from an API-format export already read (a file's, or a block's)."""
        if (
            not isinstance(document, dict)
            or not document
            or not all(isinstance(n, dict) and "class_type" in n for n in document.values())
        ):
            raise TemplateError(
                f"{origin}: not an API-format workflow; export it with 'Save (API)' "
                "(a plain 'Save' writes the editor's format, with 'nodes' and 'links')"
            )
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return cls(name, document, hashlib.sha256(canonical.encode()).hexdigest(), origin)

    def titled(self, title: str) -> tuple[str, dict[str, Any]]:
        """The id and node carrying ``title``; exactly one must."""
        found = self._find(title)
        if found is None:
            raise TemplateError(f"{self.name}: no node is titled '{title}'")
        return found

    def _find(self, title: str) -> tuple[str, dict[str, Any]] | None:
        found = [
            (node_id, node)
            for node_id, node in self.nodes.items()
            if (node.get("_meta") or {}).get("title") == title
        ]
        if len(found) > 1:
            ids = ", ".join(node_id for node_id, _ in found)
            raise TemplateError(f"{self.name}: title '{title}' is on several nodes ({ids})")
        return found[0] if found else None

    def node_titled(self, title: str) -> str | None:
        """The id of the node that carries ``title``, if any."""
        found = self._find(title)
        return found[0] if found else None

    def problems(self, kind: TemplateKind) -> list[str]:
        """One line per title ``kind`` needs that is missing, doubled, or lacks an input."""
        where, lines = self.origin or self.name, []
        for title, spec in TITLES[kind].items():
            try:
                found = self._find(title)
            except TemplateError as doubled:
                lines.append(f"{where}: {str(doubled).split(': ', 1)[1]}")
                continue
            if found is None:
                if spec.required:
                    lines.append(f"{where}: no node is titled '{title}' ({spec.purpose})")
                continue
            node_id, node = found
            lines += [
                f"{where}: node {node_id} '{title}' ({node['class_type']}) has no input "
                + slot.spelled()
                for slot in spec.slots.values()
                if not slot.optional and slot.target(node) is None
            ]
        text_to_video = (TemplateKind.relay_t2v, TemplateKind.relay_t2v_voice)
        if kind in text_to_video and self._find(START_IMAGE) is not None:
            lines.append(f"{where}: a text-to-video template has a '{START_IMAGE}' node")
        return lines

    def require(self, kind: TemplateKind) -> None:
        """Refuse a template that lacks any title or input ``kind`` needs (every one named)."""
        lines = self.problems(kind)
        if lines:
            raise TemplateError("\n".join(lines))

    def checked(self, kind: TemplateKind) -> Workflow:
        """This template, checked for ``kind`` and binding as that kind."""
        self.require(kind)
        return replace(self, kind=kind)

    def kept_titles(self) -> list[str]:
        """The optional titles this template lacks: it keeps its own values for those."""
        if self.kind is None:
            return []
        return [
            title
            for title, spec in TITLES[self.kind].items()
            if not spec.required and self._find(title) is None
        ]

    def bind(self, values: Bindings) -> dict[str, Any]:
        """A fresh prompt with ``{title: {value: ...}}`` written in; the template is untouched.

        An optional title the template lacks is skipped; so is an optional value its node has
        no input for. Anything else missing is refused, naming the file, node and input.
        """
        titles = TITLES[self.kind] if self.kind is not None else {}
        writes: list[tuple[str, str, Any]] = []
        for title, inputs in values.items():
            spec = titles.get(title)
            found = self._find(title)
            if found is None:
                if spec is not None and not spec.required:
                    continue
                raise TemplateError(f"{self.name}: no node is titled '{title}'")
            node_id, node = found
            for name, value in inputs.items():
                slot = spec.slots.get(name) if spec is not None else None
                slot = slot or Slot((name,))
                target = slot.target(node)
                if target is None:
                    if slot.optional:
                        continue
                    raise TemplateError(
                        f"{self.name}: node {node_id} '{title}' ({node['class_type']}) "
                        f"has no input {slot.spelled()}"
                    )
                writes.append((node_id, target, value))
        prompt = copy.deepcopy(self.nodes)
        for node_id, target, value in writes:
            prompt[node_id]["inputs"][target] = value
        return prompt


def load_template(kind: TemplateKind, directory: Path = WORKFLOWS_DIR) -> Workflow:
    """The template for ``kind`` from ``directory``, checked for its required titles."""
    return Workflow.load(directory / f"{kind.value}.json").checked(kind)


# --- model sets ----------------------------------------------------------------------


# --- fill functions the render tasks call --------------------------------------------


def relay_prompt(
    workflow: Workflow,
    *,
    global_prompt: str,
    segment_prompts: list[str],
    segment_frames: list[int],
    width: int,
    height: int,
    frames: int,
    fps: int,
    seed: int,
    negative: str,
    start_image: str | None,
    models: ModelSet,
    output_prefix: str,
    voice: str | None = None,
) -> dict[str, Any]:
    """A Prompt Relay sequence prompt (I2V when ``start_image`` is given, else T2V), in the
    reference voice ``voice`` (an uploaded clip) when given."""
    _check_segments(workflow.name, segment_prompts, segment_frames, frames)
    i2v = start_image is not None
    kinds = {
        (True, False): TemplateKind.relay_i2v,
        (False, False): TemplateKind.relay_t2v,
        (True, True): TemplateKind.relay_i2v_voice,
        (False, True): TemplateKind.relay_t2v_voice,
    }
    workflow = _as_kind(workflow, kinds[(i2v, voice is not None)])
    ltx = models.ltx23
    timeline = {
        "segments": [
            {"prompt": text, "length": length, "color": _SEGMENT_COLOURS[i % 6]}
            for i, (text, length) in enumerate(zip(segment_prompts, segment_frames, strict=True))
        ]
    }
    values: dict[str, dict[str, Any]] = {
        "reelflow.checkpoint": {"ckpt_name": ltx.checkpoint},
        "reelflow.text_encoder": {"text_encoder": ltx.text_encoder, "ckpt_name": ltx.checkpoint},
        "reelflow.audio_vae": {"ckpt_name": ltx.checkpoint},
        "reelflow.distilled_lora": {
            "lora_name": ltx.distilled_lora,
            "strength_model": ltx.distilled_lora_strength,
        },
        "reelflow.frames": {"width": width, "height": height, "length": frames},
        # LTX derives the audio latent count (25 Hz) from video frames and fps itself; a plain
        # EmptyAudio takes the same length in seconds.
        "reelflow.audio_frames": {
            "frames_number": frames,
            "frame_rate": fps,
            "duration": frames / fps,
        },
        "reelflow.prompt": {
            "global_prompt": global_prompt,
            "local_prompts": " | ".join(p.strip() for p in segment_prompts),
            "segment_lengths": ", ".join(str(n) for n in segment_frames),
            "max_frames": frames,
            "timeline_data": json.dumps(timeline, ensure_ascii=False),
        },
        "reelflow.negative": {"text": negative},
        "reelflow.conditioning": {"frame_rate": float(fps)},
        "reelflow.seed": {"noise_seed": seed},
        "reelflow.sigmas": {"sigmas": ltx.sigmas},
        "reelflow.guider": {"cfg": ltx.cfg},
        "reelflow.video": {"fps": float(fps)},
        "reelflow.output": {"filename_prefix": output_prefix},
    }
    if start_image is not None:
        values[START_IMAGE] = {"image": start_image}
    else:
        _refuse_title(workflow, START_IMAGE, "a text-to-video render")
    if voice is not None:
        values[VOICE] = {"audio": voice}
        values["reelflow.id_lora"] = {"lora_name": ltx.id_lora}
        values["reelflow.reference_audio"] = {"identity_guidance_scale": ltx.identity_guidance}
    return workflow.bind(values)


def keyframe_prompt(
    workflow: Workflow,
    *,
    prompt: str,
    width: int,
    height: int,
    seed: int,
    models: ModelSet,
    output_prefix: str,
) -> dict[str, Any]:
    """A text-to-image keyframe prompt (the start frame of a chain)."""
    image = models.keyframe
    return _as_kind(workflow, TemplateKind.keyframe).bind(
        {
            "reelflow.checkpoint": {"unet_name": image.diffusion_model},
            "reelflow.text_encoder": {"clip_name": image.text_encoder},
            "reelflow.vae": {"vae_name": image.vae},
            "reelflow.prompt": {"text": prompt},
            "reelflow.size": {"width": width, "height": height},
            "reelflow.seed": {"seed": seed, "steps": image.steps},
            "reelflow.output": {"filename_prefix": output_prefix},
        }
    )


def cue_prompt(
    workflow: Workflow,
    *,
    tags: str,
    bpm: int,
    keyscale: str,
    seconds: float,
    seed: int,
    models: ModelSet,
    output_prefix: str,
    timesignature: str = "4",
    lyrics: str = "[Instrumental]",
) -> dict[str, Any]:
    """An ACE-Step 1.5 score cue prompt."""
    if not 0 < seconds <= MAX_CUE_SECONDS:
        raise TemplateError(
            f"{workflow.name}: a cue of {seconds:g} s is outside 0-{MAX_CUE_SECONDS:g} s; "
            "split longer score zones into several cues"
        )
    ace = models.acestep15
    return _as_kind(workflow, TemplateKind.cue).bind(
        {
            "reelflow.checkpoint": {"unet_name": ace.diffusion_model},
            "reelflow.text_encoder": {
                "clip_name1": ace.text_encoder_small,
                "clip_name2": ace.text_encoder_large,
            },
            "reelflow.vae": {"vae_name": ace.vae},
            "reelflow.prompt": {
                "tags": tags,
                "lyrics": lyrics,
                "seed": seed,
                "bpm": bpm,
                "duration": float(seconds),
                "timesignature": timesignature,
                "keyscale": keyscale,
            },
            "reelflow.seconds": {"seconds": float(seconds)},
            "reelflow.seed": {"seed": seed, "steps": ace.steps, "cfg": ace.cfg},
            "reelflow.output": {"filename_prefix": output_prefix},
        }
    )


def _as_kind(workflow: Workflow, kind: TemplateKind) -> Workflow:
    """A template read without a kind is checked as the kind it is first filled as."""
    return workflow if workflow.kind is not None else workflow.checked(kind)


def _check_segments(name: str, prompts: list[str], frames_each: list[int], frames: int) -> None:
    if not prompts or len(prompts) != len(frames_each):
        raise TemplateError(
            f"{name}: {len(prompts)} segment prompts but {len(frames_each)} segment lengths"
        )
    for index, text in enumerate(prompts):
        if "|" in text:
            raise TemplateError(
                f"{name}: segment {index} prompt contains '|', which Prompt Relay reads as "
                f"a segment separator: {text!r}"
            )
    if any(n <= 0 for n in frames_each) or sum(frames_each) != frames:
        raise TemplateError(
            f"{name}: segment lengths {frames_each} must be positive and sum to {frames} frames"
        )
    if (frames - 1) % 8:
        raise TemplateError(f"{name}: LTX needs 8k+1 frames, got {frames}")


def _refuse_title(workflow: Workflow, title: str, what: str) -> None:
    """A template with a start image slot cannot render without an image."""
    try:
        workflow.titled(title)
    except TemplateError:
        return
    raise TemplateError(f"{workflow.name}: has '{title}' but {what} was asked for (no image)")
