"""Which progress display the current run reports to (the CLI installs a rich one)."""

from __future__ import annotations

from contextvars import ContextVar

from tasks.runtime.studio import ProgressSink, QuietSink

QUIET = QuietSink()
progress_sink: ContextVar[ProgressSink] = ContextVar("progress_sink", default=QUIET)
