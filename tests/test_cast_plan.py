"""The cast in the plan: whose voice a sequence speaks in, who auditions, whose portraits a
keyframe shows. Pure rules over the screenplay."""

from __future__ import annotations

from typing import Any

from tasks.plan.cast import dominant_speaker, portrait_prompt
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.schema.film_plan import FilmPlan
from tasks.schema.screenplay import Screenplay

LOOKS = {"EDDA": "an old keeper with a white braid", "TOMAS": "a young fisherman in oilskins"}


def screenplay(characters: dict[str, Any], shots: list[dict[str, Any]]) -> Screenplay:
    return Screenplay.model_validate(
        {
            "title": "The Keeper",
            "style": "painterly, warm light",
            "setting": "a lighthouse",
            "characters": characters,
            "scenes": [
                {"description": f"Shot {n}.", "duration": 12.0, "relay_break": n > 0, **shot}
                for n, shot in enumerate(shots)
            ],
        }
    )


def says(*lines: tuple[str, str]) -> dict[str, Any]:
    return {"dialogue": [{"character": c, "line": t} for c, t in lines]}


def planned(characters: dict[str, Any], shots: list[dict[str, Any]]) -> FilmPlan:
    return plan_film(screenplay(characters, shots), load_defaults())


def test_the_dominant_speaker_has_the_most_words_and_the_first_line_breaks_a_tie() -> None:
    plan = planned(
        LOOKS,
        [
            says(("TOMAS", "Storm coming."), ("EDDA", "Then light the lamp tonight.")),
            says(("TOMAS", "Two words."), ("EDDA", "Two more.")),
        ],
    )
    assert [dominant_speaker(s) for s in plan.sequences] == ["EDDA", "TOMAS"]


def test_descriptions_alone_plan_no_cast_and_no_voice_for_any_sequence() -> None:
    plan = planned(LOOKS, [says(("EDDA", "Keep the lamp burning."))])
    assert plan.cast == ()
    assert plan.sequences[0].voice_of is None
    assert plan.chains[0].keyframe.portraits == ()


def test_a_cast_member_without_a_voice_auditions_with_their_first_line() -> None:
    characters = {
        "EDDA": {"description": LOOKS["EDDA"]},
        "TOMAS": {"description": LOOKS["TOMAS"], "voice": "tomas.wav"},
        "GULL": "a grey gull",
        "MUTE": {"description": "a silent child"},
    }
    shots = [
        says(("EDDA", "Keep the lamp burning.")),
        {
            **says(("GULL", "Caw caw caw."), ("TOMAS", "Later tonight, my old friend.")),
            "tags": ["keyframe"],
        },
    ]
    plan = planned(characters, shots)
    cast = {member.name: member for member in plan.cast}
    assert set(cast) == {"EDDA", "TOMAS", "MUTE"}
    edda = cast["EDDA"].audition
    assert edda is not None and edda.line == "Keep the lamp burning."
    assert round(edda.seconds * 24) % 8 == 1  # whole latent steps: 8n+1 frames
    assert cast["TOMAS"].audition is None and cast["MUTE"].audition is None
    # Each sequence speaks in its dominant speaker's voice; the gull is not cast.
    assert [s.voice_of for s in plan.sequences] == ["EDDA", "TOMAS"]
    assert planned(characters, shots) == plan  # deterministic: same seeds on every plan


def test_a_keyframe_shows_the_portraits_of_the_cast_on_screen_in_its_first_scene() -> None:
    characters = {name: {"description": look} for name, look in LOOKS.items()}
    shots = [
        {"characters": ["TOMAS", "EDDA", "GUEST"]} | says(("EDDA", "Come in.")),
        {"tags": ["keyframe"], "source_image": None},
    ]
    plan = planned(characters | {"GUEST": "a stranger"}, shots)
    assert plan.chains[0].keyframe.portraits == ("TOMAS", "EDDA")
    assert plan.chains[1].keyframe.portraits == ()


def test_a_portrait_prompt_describes_the_character_and_never_names_the_film() -> None:
    written = screenplay({"EDDA": {"description": LOOKS["EDDA"]}}, [{}])
    prompt = portrait_prompt(written, "EDDA")
    assert prompt.lower().startswith("head and shoulders portrait")
    assert LOOKS["EDDA"] in prompt and "The Keeper" not in prompt
