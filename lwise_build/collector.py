"""``lwise-build serve``: the experiment's collector, an ASGI app (starlette) run by uvicorn.

It serves the built experiment folder (and, optionally, a local ``node_modules`` for jsPsych), hands
each new participant the next unused sequence of the blocked design, and stores every saved row
append-only (:class:`~lwise_build.io.collector_store.CollectorStore`). The page finds it at
``api/hello`` and then uses ``api/assign`` and ``api/trials`` (docs/methods.md, "Experiments and
analysis"; README, "Run the experiment").
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .errors import UserError
from .io.collector_store import CollectorStore, StoreError

#: The largest request body accepted (a batch of rows).
MAX_BODY = 4_000_000


async def _body(request: Request) -> dict[str, Any]:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise StoreError(413, f"request larger than {MAX_BODY} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise StoreError(413, f"request larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise StoreError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise StoreError(400, "the body must be a JSON object")
    return data


def make_app(experiment: Path, store: CollectorStore, node_modules: Path | None = None,
             allow_origins: tuple[str, ...] = ()) -> Starlette:
    """The collector: the API under ``/api/``, the experiment folder at ``/``."""
    manifest = store.manifest

    async def hello(_request: Request) -> JSONResponse:
        return JSONResponse({"collector": "lwise-build", "build": manifest.get("build"), "corpus": manifest.get("corpus")})

    async def assign(request: Request) -> JSONResponse:
        data = await _body(request)
        return JSONResponse(await run_in_threadpool(
            store.assign, data.get("participant"), data.get("source", "url"), data.get("fixed_condition"),
            data.get("condition"), data.get("sequence")))

    async def trials(request: Request) -> JSONResponse:
        data = await _body(request)
        return JSONResponse(await run_in_threadpool(store.append, str(data.get("participant", "")), data.get("rows")))

    async def no_icon(_request: Request) -> Response:  # pages without an icon link (the redirect target)
        return Response(status_code=204)

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    routes = [Route("/api/hello", hello), Route("/api/assign", assign, methods=["POST"]),
              Route("/api/trials", trials, methods=["POST"]), Route("/favicon.ico", no_icon)]
    if node_modules is not None:
        routes.append(Mount("/node_modules", StaticFiles(directory=node_modules)))
    routes.append(Mount("/", StaticFiles(directory=experiment, html=True)))
    middleware = [Middleware(CORSMiddleware, allow_origins=list(allow_origins), allow_methods=["GET", "POST"],
                             allow_headers=["Content-Type"])] if allow_origins else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={StoreError: refused})


def open_collector(experiment: Path, store_dir: Path, node_modules: Path | None = None,
                   allow_origins: tuple[str, ...] = ()) -> tuple[Starlette, CollectorStore]:
    """The app and its store for a built experiment folder (one line when it is not one)."""
    manifest_path = Path(experiment) / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path}: no built experiment to serve; run `lwise-build experiment <corpus>` first")
    if node_modules is not None and not (Path(node_modules) / "jspsych").is_dir():
        raise UserError(f"--node-modules {node_modules}: no jspsych package there (npm install jspsych@8 ... first)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    store = CollectorStore(store_dir, manifest)
    return make_app(Path(experiment), store, node_modules, allow_origins), store


def server(app: Starlette, host: str, port: int) -> Any:
    """A uvicorn server for ``app``; ``run(sockets=[bind(host, port)])`` blocks until stopped."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                         lifespan="off"))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), or one line saying why it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose another port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
