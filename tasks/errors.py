"""The errors reelflow reports to a user: each names the problem and the fix."""

from __future__ import annotations

from dataclasses import dataclass


class ReelflowError(Exception):
    """Something reelflow cannot do, explained for the person who asked."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what is wrong, how to fix it."""

    location: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text} Fix: {self.fix}" if self.fix else text


class ScreenplayError(ReelflowError):
    """The screenplay file cannot be used as written."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        heading = f"{source}: {count} problem{'s' if count != 1 else ''} in the screenplay"
        super().__init__("\n".join([heading, *(f"  - {p}" for p in problems)]))
