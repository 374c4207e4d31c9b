"""Seeds derived from content: the same content always renders with the same seed."""

from __future__ import annotations

import hashlib
import json


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any JSON-able parts (order matters, key order does not)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def take_seed(seed: int, take: int) -> int:
    """The seed of one take of a sequence: take 0 is the sequence's own seed (one take renders
    exactly what it always did), take k a seed derived from it."""
    return seed if take == 0 else derive_seed(seed, "take", take)
