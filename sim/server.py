"""The simulator's aiohttp application: ComfyUI's routes, also under ``/api``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from sim import files, history_routes
from sim.folders import Folders
from sim.hub import SERVER_FEATURES, Hub
from sim.inventory import MODEL_FOLDERS, default_models, live_object_info
from sim.jobs import Job, now_ms
from sim.queue import GpuQueue
from sim.settings import Faults, SimSettings
from sim.validation import request_error, validate_prompt

EXTENSIONS_PATH = Path(__file__).parent / "catalogue" / "extensions.json"
_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"


class Simulator:
    """Shared state of one simulator process."""

    def __init__(self, settings: SimSettings, output_dir: Path, input_dir: Path) -> None:
        self.settings = settings
        self.output_dir = output_dir
        self.input_dir = input_dir
        self.folders = Folders.beside(output_dir, input_dir)
        for folder in (self.folders.output, self.folders.input, self.folders.temp):
            folder.mkdir(parents=True, exist_ok=True)
        self.hub = Hub()
        self.queue = GpuQueue(settings, self.hub, self.folders)
        self.models = settings.models if settings.models is not None else default_models()
        self.number = 0
        self.failed_submits = 0

    def object_info(self) -> dict[str, Any]:
        """``/object_info`` as this server would list it now."""
        return live_object_info(self.models, self.input_dir)

    def file_exists(self, name: str) -> bool:
        """The loaders' own check: does the (annotated) file exist on this server?"""
        return self.folders.resolve(name) is not None


def _sim(request: web.Request) -> Simulator:
    return request.app["sim"]  # type: ignore[no-any-return]


async def post_prompt(request: web.Request) -> web.Response:
    sim = _sim(request)
    faults = sim.settings.faults
    if faults.fail_submit_status is not None and sim.failed_submits < faults.fail_submit_count:
        sim.failed_submits += 1
        return web.Response(status=faults.fail_submit_status, text=_TROUBLE)
    body = await request.json()  # malformed JSON -> aiohttp's own 500, as ComfyUI answers
    number: float | int
    if isinstance(body, dict) and "number" in body:
        number = float(body["number"])
    else:
        front = isinstance(body, dict) and body.get("front")
        number = -sim.number if front else sim.number
        sim.number += 1
    rejected = request_error(body)
    if rejected is not None:
        return web.json_response({"error": rejected, "node_errors": {}}, status=400)
    prompt_id = str(body.get("prompt_id") or uuid.uuid4())
    # Validation converts widget values in place; the converted prompt is what runs and
    # what history shows, as on the real server.
    prompt = body["prompt"]
    verdict = validate_prompt(
        prompt,
        sim.object_info(),
        targets=body.get("partial_execution_targets"),
        file_exists=sim.file_exists,
    )
    if not verdict.ok:
        return web.json_response(verdict.body(), status=400)
    extra_data = dict(body.get("extra_data") or {})
    if "client_id" in body:
        extra_data["client_id"] = body["client_id"]
    extra_data["create_time"] = now_ms()
    job = Job(number, prompt_id, prompt, extra_data, verdict.outputs)
    await sim.queue.submit(job)
    answer = {"prompt_id": prompt_id, "number": number, "node_errors": verdict.node_errors}
    return web.json_response(answer)


async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": _sim(request).queue.remaining}})


async def get_queue(request: web.Request) -> web.Response:
    queue = _sim(request).queue
    running = [queue.running.queue_item()] if queue.running else []
    pending = [entry[2].queue_item() for entry in queue.pending]
    return web.json_response({"queue_running": running, "queue_pending": pending})


async def post_queue(request: web.Request) -> web.Response:
    queue = _sim(request).queue
    body = await request.json()
    if body.get("clear"):
        await queue.delete_pending(None)
    if "delete" in body:
        await queue.delete_pending([str(i) for i in body["delete"]])
    return web.Response(status=200)


async def post_interrupt(request: web.Request) -> web.Response:
    body: dict[str, Any] = {}
    if request.can_read_body:
        with contextlib.suppress(json.JSONDecodeError):
            body = await request.json()
    _sim(request).queue.interrupt(body.get("prompt_id"))
    return web.Response(status=200)


async def post_free(request: web.Request) -> web.Response:
    queue = _sim(request).queue
    body = await request.json() if request.can_read_body else {}
    if body.get("unload_models") or body.get("free_memory"):
        queue.loaded_family = None
    return web.Response(status=200)


async def system_stats(request: web.Request) -> web.Response:
    ram = 128 * 1024**3
    vram = 80 * 1024**3
    system = {
        "os": sys.platform,
        "ram_total": ram,
        "ram_free": ram // 2,
        "comfyui_version": "0.27.0",
        "required_frontend_version": "1.45.20",
        "installed_templates_version": "0.11.1",
        "required_templates_version": "0.11.1",
        "comfy_package_versions": [],
        "python_version": sys.version,
        "pytorch_version": "simulated",
        "embedded_python": False,
        "deploy_environment": "reelflow-sim",
        "argv": sys.argv,
    }
    device = {
        "name": f"cuda:0 reelflow simulated GPU ({platform.machine()})",
        "type": "cuda",
        "index": 0,
        "vram_total": vram,
        "vram_free": vram,
        "torch_vram_total": vram,
        "torch_vram_free": vram,
    }
    return web.json_response({"system": system, "devices": [device]})


async def object_info(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).object_info())


async def object_info_class(request: web.Request) -> web.Response:
    name = request.match_info["node_class"]
    info = _sim(request).object_info()
    return web.json_response({name: info[name]} if name in info else {})


async def features(request: web.Request) -> web.Response:
    return web.json_response(SERVER_FEATURES)


async def models(request: web.Request) -> web.Response:
    return web.json_response(list(MODEL_FOLDERS))


async def models_in_folder(request: web.Request) -> web.Response:
    folder = request.match_info["folder"]
    if folder not in MODEL_FOLDERS:
        return web.Response(status=404)
    return web.json_response(sorted(_sim(request).models.get(folder, [])))


async def embeddings(request: web.Request) -> web.Response:
    return web.json_response([])


async def extensions(request: web.Request) -> web.Response:
    return web.json_response(json.loads(EXTENSIONS_PATH.read_text(encoding="utf-8")))


async def websocket(request: web.Request) -> web.WebSocketResponse:
    sim = _sim(request)
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    sid = request.query.get("clientId") or uuid.uuid4().hex
    sim.hub.sockets[sid] = socket
    try:
        await sim.hub.status(sim.queue.remaining, sid)
        running = sim.queue.running
        if running is not None and running.client_id == sid and sim.queue.current_node:
            # A client that reconnects mid-run learns which node is executing; the rest
            # of the run's events follow on this socket, as with ComfyUI.
            await sim.hub.send("executing", {"node": sim.queue.current_node}, sid)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                if json.loads(message.data).get("type") == "feature_flags":
                    await socket.send_json({"type": "feature_flags", "data": SERVER_FEATURES})
    finally:
        if sim.hub.sockets.get(sid) is socket:
            del sim.hub.sockets[sid]
    return socket


async def sim_stats(request: web.Request) -> web.Response:
    return web.json_response(asdict(_sim(request).queue.stats))


async def sim_faults(request: web.Request) -> web.Response:
    sim = _sim(request)
    merged = sim.settings.faults.model_dump() | await request.json()
    sim.settings.faults = Faults.model_validate(merged)
    sim.failed_submits = 0
    return web.json_response(sim.settings.faults.model_dump())


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/prompt", get_prompt),
    ("POST", "/prompt", post_prompt),
    ("GET", "/queue", get_queue),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("POST", "/free", post_free),
    ("GET", "/system_stats", system_stats),
    ("GET", "/object_info", object_info),
    ("GET", "/object_info/{node_class}", object_info_class),
    ("GET", "/features", features),
    ("GET", "/models", models),
    ("GET", "/models/{folder}", models_in_folder),
    ("GET", "/embeddings", embeddings),
    ("GET", "/extensions", extensions),
    ("GET", "/ws", websocket),
    *files.ROUTES,
    *history_routes.ROUTES,
]


async def _start_worker(app: web.Application) -> None:
    app["worker"] = asyncio.create_task(_sim_of(app).queue.run_forever())


async def _stop_worker(app: web.Application) -> None:
    app["worker"].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app["worker"]
    await _sim_of(app).hub.drop_all()


def _sim_of(app: web.Application) -> Simulator:
    return app["sim"]  # type: ignore[no-any-return]


def create_app(settings: SimSettings, output_dir: Path, input_dir: Path) -> web.Application:
    """The aiohttp app of one simulator; routes exist both bare and under ``/api``."""
    app = web.Application(client_max_size=104857600)
    app["sim"] = Simulator(settings, output_dir, input_dir)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, "/api" + path, handler)
    for method, path, handler in history_routes.JOB_ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/reelflow-sim/stats", sim_stats)
    app.router.add_post("/reelflow-sim/faults", sim_faults)
    app.on_startup.append(_start_worker)
    app.on_shutdown.append(_stop_worker)
    return app
