"""The ComfyUI error tree: mapped once at the client boundary, read by class above it.

A Prefect retry condition needs only ``isinstance(exc, TransientError)``: everything
under it is worth retrying with backoff, everything else fails the task at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ComfyUIError(Exception):
    """Something went wrong talking to a ComfyUI server or preparing what we send it."""

    exit_code: ClassVar[int] = 1
    """What the command line exits with when this ends a run (see tasks/errors.py)."""


class TransientError(ComfyUIError):
    """A failure that a later attempt, on this or another server, can get past."""


class ServerUnreachable(TransientError):
    """The server refused the connection, its name did not resolve, or it hung up."""

    exit_code: ClassVar[int] = 5


class ServerDown(ServerUnreachable):
    """The server stayed unreachable for the whole wait: trying again at once cannot help."""


class ServerTimeout(TransientError):
    """The server did not answer, or did not finish a render, within the time allowed."""

    exit_code: ClassVar[int] = 5


class ServerError(TransientError):
    """The server answered with a 5xx status."""

    exit_code: ClassVar[int] = 5

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class PromptLost(TransientError):
    """Our prompt vanished from the server's queue and history (the server restarted)."""


class BadRequest(ComfyUIError):
    """The server refused a request other than a prompt with a 4xx status."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ProtocolError(ComfyUIError):
    """The server answered with a body that is not shaped like ComfyUI's."""


class TemplateError(ComfyUIError):
    """A workflow template lacks a binding, or a binding was given a value it cannot take."""


class PromptRejected(ComfyUIError):
    """ComfyUI's validator refused the prompt (400, or 200 with non-empty node_errors)."""

    stage: str = ""
    """The film stage that sent it (``score cue 0``), once known."""

    def __init__(
        self,
        error: Mapping[str, Any] | None,
        node_errors: Mapping[str, Any] | None,
        *,
        status_code: int = 400,
    ) -> None:
        self.error: dict[str, Any] = dict(error or {})
        self.node_errors: dict[str, Any] = dict(node_errors or {})
        self.status_code = status_code
        super().__init__(describe_rejection(self.error, self.node_errors))


class PreflightFailed(PromptRejected):
    """A template will not run on this server: a node class, model file or input is wrong."""

    exit_code: ClassVar[int] = 3

    def __init__(self, problems: list[str], *, text: str = "", headline: str = "") -> None:
        self.problems = list(problems)
        super().__init__({"type": "preflight_failed", "message": "Preflight failed"}, {})
        self.headline = headline or f"preflight found {len(self.problems)} problem(s)"
        self.args = (
            text
            or "ComfyUI preflight found problems:\n" + "\n".join(f"  - {p}" for p in self.problems),
        )


class ExecutionFailed(ComfyUIError):
    """A node raised while the server executed our prompt."""

    def __init__(
        self,
        *,
        prompt_id: str,
        node_id: str | None,
        node_type: str | None,
        exception_type: str,
        exception_message: str,
    ) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message.strip()
        super().__init__(
            f"node {node_id} ({node_type}) raised {exception_type}: {self.exception_message}"
        )


class OutOfMemory(ExecutionFailed, TransientError):
    """The GPU ran out of memory while executing our prompt; another try may fit."""


class Interrupted(ComfyUIError):
    """Our prompt was interrupted on the server before it finished."""


class OutputInvalid(ComfyUIError):
    """An output could not be downloaded safely or failed verification."""


def describe_rejection(error: Mapping[str, Any], node_errors: Mapping[str, Any]) -> str:
    """One readable message naming node id, class, input and ComfyUI's own words."""
    lines: list[str] = []
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type") if isinstance(entry, Mapping) else None
        errors = entry.get("errors", []) if isinstance(entry, Mapping) else []
        for item in errors:
            extra = item.get("extra_info") or {}
            input_name = extra.get("input_name")
            where = f"node {node_id} ({class_type})"
            if input_name:
                where += f" input '{input_name}'"
            detail = item.get("details") or ""
            message = item.get("message") or item.get("type") or "invalid"
            lines.append(f"{where}: {message}" + (f" - {detail}" if detail else ""))
    if not lines:
        extra = error.get("extra_info") or {}
        head = error.get("message") or error.get("type") or "prompt rejected"
        if extra.get("class_type") or extra.get("node_id"):
            head += f" (node {extra.get('node_id')}, class {extra.get('class_type')})"
        details = error.get("details")
        return f"{head}: {details}" if details and details != head else str(head)
    return "ComfyUI rejected the prompt: " + "; ".join(lines)
