"""``/history`` and ``/api/jobs``: views over the simulator's job records."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sim.jobs import JOB_STATUSES, Job
from sim.queue import GpuQueue

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _queue(request: web.Request) -> GpuQueue:
    return request.app["sim"].queue  # type: ignore[no-any-return]


def history_page(ids: list[str], max_items: int | None, offset: int | None) -> list[str]:
    """Which entries ``GET /history`` returns, by ComfyUI's paging rules.

    Without an offset the page is the newest ``max_items``; with one it starts there and
    runs to the end or for ``max_items`` entries (of which it always holds at least one).
    """
    start = -1 if offset is None else offset
    if start < 0 and max_items is not None:
        start = len(ids) - max_items
    page: list[str] = []
    for index, prompt_id in enumerate(ids):
        if index >= start:
            page.append(prompt_id)
            if max_items is not None and len(page) >= max_items:
                break
    return page


async def get_history(request: web.Request) -> web.Response:
    history = _queue(request).history
    # A non-integer value raises, and the client gets aiohttp's 500, as from ComfyUI.
    max_items = int(request.query["max_items"]) if "max_items" in request.query else None
    offset = int(request.query["offset"]) if "offset" in request.query else None
    page = history_page(list(history), max_items, offset)
    return web.json_response({i: history[i].history_entry() for i in page})


async def get_history_item(request: web.Request) -> web.Response:
    job = _queue(request).history.get(request.match_info["prompt_id"])
    return web.json_response({job.prompt_id: job.history_entry()} if job else {})


async def post_history(request: web.Request) -> web.Response:
    queue = _queue(request)
    body = await request.json()
    doomed = list(queue.history) if body.get("clear") else [str(i) for i in body.get("delete", [])]
    for prompt_id in doomed:
        if queue.history.pop(prompt_id, None) is not None:
            queue.jobs.pop(prompt_id, None)
    return web.Response(status=200)


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f'{{"error": "{name} must be an integer"}}', content_type="application/json"
        ) from None


def _bad(message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=400)


def _duration(job: Job) -> int:
    if job.start_ms is None or job.end_ms is None:
        return -1
    return job.end_ms - job.start_ms


async def list_jobs(request: web.Request) -> web.Response:
    queue = _queue(request)
    wanted = [s for s in request.query.get("status", "").split(",") if s]
    unknown = [s for s in wanted if s not in JOB_STATUSES]
    if unknown:
        valid = ", ".join(JOB_STATUSES)
        return _bad(f"Invalid status value(s): {','.join(unknown)}. Valid values: {valid}")
    sort_by = request.query.get("sort_by", "created_at")
    if sort_by not in ("created_at", "execution_duration"):
        return _bad("sort_by must be 'created_at' or 'execution_duration'")
    order = request.query.get("sort_order", "desc")
    if order not in ("asc", "desc"):
        return _bad("sort_order must be 'asc' or 'desc'")
    limit = _int_param(request, "limit")
    if limit is not None and limit <= 0:
        return _bad("limit must be a positive integer")
    offset = max(0, _int_param(request, "offset") or 0)
    jobs = [j for j in queue.jobs.values() if not wanted or j.status in wanted]
    key = _duration if sort_by == "execution_duration" else (lambda j: j.create_ms)
    jobs.sort(key=key, reverse=order == "desc")
    page = jobs[offset : offset + limit] if limit is not None else jobs[offset:]
    pagination = {
        "offset": offset,
        "limit": limit,
        "total": len(jobs),
        "has_more": offset + len(page) < len(jobs),
    }
    return web.json_response({"jobs": [j.job_summary() for j in page], "pagination": pagination})


async def get_job(request: web.Request) -> web.Response:
    job = _queue(request).jobs.get(request.match_info["job_id"])
    if job is None:
        return web.json_response({"error": "Job not found"}, status=404)
    return web.json_response(job.job_detail())


async def _cancel(queue: GpuQueue, job_id: str) -> bool:
    job = queue.jobs.get(job_id)
    if job is None or job.status not in ("pending", "in_progress"):
        return False
    if job.status == "pending":
        return await queue.delete_pending([job_id])
    return queue.interrupt(job_id)


async def cancel_job(request: web.Request) -> web.Response:
    queue = _queue(request)
    job_id = request.match_info["job_id"]
    if job_id not in queue.jobs:
        return web.json_response({"error": "Job not found"}, status=404)
    return web.json_response({"cancelled": await _cancel(queue, job_id)})


async def cancel_jobs(request: web.Request) -> web.Response:
    queue = _queue(request)
    body = await request.json()
    ids = [str(i) for i in body.get("job_ids", [])]
    invalid = [i for i in ids if not _UUID.match(i)]
    if invalid:
        return _bad("job_ids contains invalid id(s)", invalid_ids=invalid)
    results = [await _cancel(queue, i) for i in ids]
    return web.json_response({"cancelled": any(results)})


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/history", get_history),
    ("GET", "/history/{prompt_id}", get_history_item),
    ("POST", "/history", post_history),
]

# ComfyUI serves the jobs API under /api only.
JOB_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/jobs", list_jobs),
    ("POST", "/api/jobs/cancel", cancel_jobs),
    ("GET", "/api/jobs/{job_id}", get_job),
    ("POST", "/api/jobs/{job_id}/cancel", cancel_job),
]
