"""`prepgen serve`: a local preview of a build folder on loopback (stdlib http.server)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import ConfigError
from .headers import CACHE_CONTROL, classify


class _Handler(SimpleHTTPRequestHandler):
    base_path = "/"

    def translate_path(self, path: str) -> str:
        # Serve the site under its base path, like the real deployment.
        if self.base_path != "/" and path.startswith(self.base_path):
            path = "/" + path[len(self.base_path) :]
        return super().translate_path(path)

    def end_headers(self) -> None:
        rel = self.path.split("?", 1)[0]
        if rel.startswith(self.base_path):
            rel = rel[len(self.base_path) :]
        self.send_header("Cache-Control", CACHE_CONTROL[classify(rel.lstrip("/"))])
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(root: Path, bind: str, port: int, base_path: str = "/") -> ThreadingHTTPServer:
    if not (root / "index.html").exists():
        raise ConfigError(f"{root}: no index.html here; run `prepgen build` first or pass the build folder")
    handler = type("Handler", (_Handler,), {"base_path": base_path})
    return ThreadingHTTPServer((bind, port), functools.partial(handler, directory=str(root)))


def serve(root: Path, bind: str, port: int, base_path: str = "/", say: Callable[[str], None] = print) -> None:
    server = make_server(root, bind, port, base_path)
    say(f"Serving {root} on http://{bind}:{server.server_address[1]}{base_path} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
