"""Post work (ASR, loudness) runs one job at a time beside the GPU-feeding path, so that
downloads, carry frames and submissions are never starved of the CPU.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_POST_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reelflow-post")


async def off_the_critical_path(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `function` on the post worker thread (one job at a time) and await its result."""
    return await asyncio.get_running_loop().run_in_executor(
        _POST_WORKER, functools.partial(function, *args, **kwargs)
    )
