"""The naming scheme: TITLE_SEQ0010_v001, safe everywhere."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.deliver.names import deliverable_name, sequence_number, title_token

NAME = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*(?:_SEQ[0-9]{4})?_v[0-9]{3}")


def test_sequences_and_films_are_named_by_the_scheme() -> None:
    assert deliverable_name("Harbour: A Test Reel", 10, 1) == "HARBOUR_A_TEST_REEL_SEQ0010_v001"
    assert deliverable_name("Harbour: A Test Reel", sequence_number(2), 3) == (
        "HARBOUR_A_TEST_REEL_SEQ0030_v003"
    )
    assert deliverable_name("Café au lait") == "CAFE_AU_LAIT_v001"
    assert deliverable_name("???") == "FILM_v001"


def test_sequence_numbers_count_in_tens_from_ten() -> None:
    assert [sequence_number(i) for i in range(4)] == [10, 20, 30, 40]


def test_long_titles_are_cut_to_24_characters_without_a_trailing_underscore() -> None:
    token = title_token("The Lighthouse Keeper's Daughter Returns")
    assert token == "THE_LIGHTHOUSE_KEEPER_S"
    assert len(token) <= 24


@pytest.mark.parametrize(
    ("sequence", "version", "problem"),
    [(10000, 1, "four digits"), (10, 0, "from 1 to 999"), (10, 1000, "from 1 to 999")],
)
def test_numbers_that_do_not_fit_the_scheme_are_refused(
    sequence: int, version: int, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        deliverable_name("Harbour", sequence, version)


@given(
    st.text(max_size=80),
    st.one_of(st.none(), st.integers(0, 9999)),
    st.integers(1, 999),
)
def test_every_name_is_plain_ascii_of_the_one_shape(
    title: str, sequence: int | None, version: int
) -> None:
    assert NAME.fullmatch(deliverable_name(title, sequence, version))
