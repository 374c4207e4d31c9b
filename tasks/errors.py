"""The errors reelflow reports to a user: each names the problem and the fix.

Each class carries the exit code the command line ends with when it stops a run
(README.md lists them): 0 done, 1 render failed, 2 bad screenplay, 3 preflight refused,
4 storage, 5 server unreachable, 6 disk full, 7 store corrupt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class ReelflowError(Exception):
    """Something reelflow cannot do, explained for the person who asked."""

    exit_code: ClassVar[int] = 1


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

    exit_code: ClassVar[int] = 2

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        heading = f"{source}: {count} problem{'s' if count != 1 else ''} in the screenplay"
        super().__init__("\n".join([heading, *(f"  - {p}" for p in problems)]))


class StorageError(ReelflowError):
    """The media store or the result storage could not be read or written."""

    exit_code: ClassVar[int] = 4


class StoreUnreachable(StorageError):
    """The store did not answer, refused access, or its bucket does not exist."""


class MediaMissing(StorageError):
    """A file a cached result names is not in the media store."""


class MediaCorrupt(StorageError):
    """A stored file's bytes no longer match the hash it is named by."""

    exit_code: ClassVar[int] = 7


class DiskFull(ReelflowError):
    """A local disk ran out of space while the run wrote to it."""

    exit_code: ClassVar[int] = 6

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class LockTimeout(ReelflowError):
    """Another run held a render's cache lock for longer than the wait allowed."""
