"""Reading a store's failures: which pass (retry them), which are a missing object, in words.

S3 errors arrive as botocore exceptions, local ones as OSError; nothing here imports boto
unless a botocore exception is what failed.
"""

from __future__ import annotations

import errno
import os

STORE_RETRY_ENV = "REELFLOW_STORE_RETRY_S"
DEFAULT_STORE_RETRY_S = 30.0
"""How long a store that fails with a passing error (connection, timeout, 5xx, throttling)
is retried before the run gives up on it."""

_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "500",
    "502",
    "503",
    "504",
}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_PASSING_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH}


def retry_window_s() -> float:
    """Seconds a passing store error is retried for ($REELFLOW_STORE_RETRY_S, default 30)."""
    try:
        return max(0.0, float(os.environ.get(STORE_RETRY_ENV, DEFAULT_STORE_RETRY_S)))
    except ValueError:
        return DEFAULT_STORE_RETRY_S


def _error_code(failure: BaseException) -> str | None:
    response = getattr(failure, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _botocore_kind(failure: BaseException) -> str | None:
    """'transient' for a botocore connection or timeout error, else None."""
    if not type(failure).__module__.startswith("botocore"):
        return None
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, ResponseStreamingError

    if isinstance(failure, BotoConnectionError | HTTPClientError | ResponseStreamingError):
        return "transient"
    return None


def is_missing_object(failure: BaseException) -> bool:
    """The store answered, and the object is not there."""
    if isinstance(failure, FileNotFoundError):
        return True
    return _error_code(failure) in _MISSING_CODES


def is_transient(failure: BaseException) -> bool:
    """A failure a later attempt may get past: connection, timeout, 5xx, throttling."""
    if _botocore_kind(failure) == "transient":
        return True
    if _error_code(failure) in _TRANSIENT_CODES:
        return True
    if isinstance(failure, ConnectionError | TimeoutError):
        return True
    return isinstance(failure, OSError) and failure.errno in _PASSING_ERRNOS


def short_reason(failure: BaseException) -> str:
    """The failure in one line, without a block's repr or a traceback."""
    code = _error_code(failure)
    text = " ".join(str(failure).split()) or type(failure).__name__
    if code and code not in text:
        text = f"{code}: {text}"
    return text[:300]
