"""Every prompt sent to a GPU server, written down before it is sent.

A run killed mid-render leaves its prompt on the server, which renders it to the end. The
next run reads this journal before submitting the same prompt and asks that server about
it: a prompt still queued or running is followed to its end, a finished one has its
outputs downloaded, and only a prompt the server no longer has (restarted, failed,
interrupted) is submitted again. A crash at any point costs no GPU work twice.

The journal lives beside the cache locks (one small file per prompt, named by the prompt's
hash); writing it is fsynced, so it survives the crash it is there for.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tasks.runtime.files import write_atomic


class Submission(BaseModel):
    """One prompt as sent: to which server, under which ids, and what it was."""

    server: str
    prompt_id: str
    client_id: str
    prompt_sha256: str
    submitted_at: float


def prompt_digest(prompt: dict[str, Any]) -> str:
    """The hash of a prompt's content: the same prompt on any run has the same digest."""
    canonical = json.dumps(prompt, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SubmissionJournal:
    """The submissions of every run on this store, one file per prompt (the latest wins)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.json"

    def record(self, server: str, prompt_id: str, client_id: str, digest: str) -> Submission:
        """Write a submission down (durably) before the prompt goes to the server."""
        submission = Submission(
            server=server,
            prompt_id=prompt_id,
            client_id=client_id,
            prompt_sha256=digest,
            submitted_at=time.time(),
        )
        write_atomic(self._path(digest), submission.model_dump_json().encode())
        return submission

    def find(self, digest: str) -> Submission | None:
        """The last submission of this prompt, if one was written down and can be read."""
        try:
            return Submission.model_validate_json(self._path(digest).read_bytes())
        except (OSError, ValidationError):
            return None
