"""Who gets a voice made, and whose voice a sequence speaks in: pure rules over the plan."""

from __future__ import annotations

from tasks.cast.plan import auditions, dominant_speaker, portrait_prompt
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.schema.screenplay import Screenplay

LOOKS = {"EDDA": "an old keeper with a white braid", "TOMAS": "a young fisherman in oilskins"}


def screenplay(characters: dict[str, object], lines: list[list[tuple[str, str]]]) -> Screenplay:
    return Screenplay.model_validate(
        {
            "title": "The Keeper",
            "style": "painterly, warm light",
            "setting": "a lighthouse",
            "characters": characters,
            "scenes": [
                {
                    "description": f"Shot {n}.",
                    "duration": 12.0,
                    "relay_break": n > 0,
                    "dialogue": [{"character": c, "line": t} for c, t in spoken],
                }
                for n, spoken in enumerate(lines)
            ],
        }
    )


def test_the_dominant_speaker_has_the_most_words_and_the_first_line_breaks_a_tie() -> None:
    written = screenplay(
        LOOKS,
        [
            [("TOMAS", "Storm coming."), ("EDDA", "Then light the lamp tonight.")],
            [("TOMAS", "Two words."), ("EDDA", "Two more.")],
        ],
    )
    plan = plan_film(written, load_defaults())
    assert [dominant_speaker(s) for s in plan.sequences] == ["EDDA", "TOMAS"]


def test_only_cast_characters_who_speak_without_a_voice_file_audition_with_their_first_line() -> (
    None
):
    characters = {
        "EDDA": {"description": LOOKS["EDDA"]},
        "TOMAS": {"description": LOOKS["TOMAS"], "voice": "tomas.wav"},
        "GULL": "a grey gull",
        "MUTE": {"description": "a silent child"},
    }
    written = screenplay(
        characters,
        [[("EDDA", "Keep the lamp burning.")], [("GULL", "Caw caw caw."), ("EDDA", "Later.")]],
    )
    found = auditions(written, plan_film(written, load_defaults()))
    assert [(a.character, a.line) for a in found] == [("EDDA", "Keep the lamp burning.")]
    assert found[0].seed == auditions(written, plan_film(written, load_defaults()))[0].seed


def test_a_portrait_prompt_describes_the_character_and_never_names_the_film() -> None:
    written = screenplay({"EDDA": {"description": LOOKS["EDDA"]}}, [[]])
    prompt = portrait_prompt(written, "EDDA")
    assert LOOKS["EDDA"] in prompt and "neutral grey background" in prompt
    assert "The Keeper" not in prompt
