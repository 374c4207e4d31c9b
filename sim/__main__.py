"""``python -m sim``: run the ComfyUI-compatible simulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path

from aiohttp import web

from sim.server import create_app
from sim.settings import Faults, SimSettings


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--output-dir", type=Path, default=Path("sim_output/output"))
    parser.add_argument("--input-dir", type=Path, default=None, help="default: next to output")
    parser.add_argument("--gpu-seconds-per-second", type=float, default=None)
    parser.add_argument("--faults", default=None, help="JSON object of fault settings")
    parser.add_argument("--settings", default=None, help="JSON of a whole SimSettings")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> SimSettings:
    """Merge ``--settings`` with the individual flags (flags win)."""
    settings = SimSettings.model_validate_json(args.settings) if args.settings else SimSettings()
    if args.gpu_seconds_per_second is not None:
        settings.gpu_seconds_per_output_second = args.gpu_seconds_per_second
    if args.faults:
        settings.faults = Faults.model_validate(
            settings.faults.model_dump() | json.loads(args.faults)
        )
    return settings


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT; a refuse-connections fault delays opening the port."""
    settings = settings_from(args)
    output_dir = args.output_dir.resolve()
    input_dir = (args.input_dir or output_dir.parent / "input").resolve()
    runner = web.AppRunner(create_app(settings, output_dir, input_dir), access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), settings.faults.refuse_connections_for_s)
    if not stop.is_set():
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        print(f"reelflow ComfyUI simulator listening on http://{args.host}:{args.port}", flush=True)
        await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m sim``."""
    # The simulator's log (sim.log beside an embedded one): what it decided, e.g. voices.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(_parse(argv)))


if __name__ == "__main__":
    main()
