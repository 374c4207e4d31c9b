"""Seeds derived from content: the same content always renders with the same seed."""

from __future__ import annotations

import hashlib
import json


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any JSON-able parts (order matters, key order does not)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
