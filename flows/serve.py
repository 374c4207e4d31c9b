"""`python -m flows.film serve`: the film folders over HTTP, for links that open anywhere.

Serves OUT read-only (never the `.reelflow` store inside it). Point the `public_url` option
(or $REELFLOW_PUBLIC_URL) at the address it prints, and each run's Prefect artifacts link to
the film, its dailies page and its pictures there.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class FilmFolders(SimpleHTTPRequestHandler):
    """Static files of OUT, minus anything hidden (the media store, results, locks)."""

    def send_head(self) -> Any:
        parts = [p for p in unquote(urlsplit(self.path).path).split("/") if p]
        if any(part.startswith(".") for part in parts):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.film serve",
        description="Serve the film folders of OUT over HTTP, read-only, until Ctrl-C.",
    )
    parser.add_argument("--out", type=Path, default=Path("renders"), help="the output folder")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 for other machines")
    parser.add_argument("--port", type=int, default=8000)
    return parser


def film_server(out: Path, host: str, port: int) -> ThreadingHTTPServer:
    handler = functools.partial(FilmFolders, directory=str(out.resolve()))
    return ThreadingHTTPServer((host, port), handler)


def run_serve(argv: list[str], say: Any = print) -> int:
    args = serve_parser().parse_args(argv)
    server = film_server(args.out, args.host, args.port)
    host, port = server.server_address[:2]
    say(
        f"serving {args.out.resolve()} at http://{host}:{port}/ (Ctrl-C stops); set "
        f"public_url (or REELFLOW_PUBLIC_URL) to this machine's address, e.g. "
        f"http://{host if host != '0.0.0.0' else 'HOSTNAME'}:{port}"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    finally:
        server.server_close()
    return 0
