"""`python -m generator serve`: the OpenAI Images API over HTTP, in front of service.py's engine.

Built on Starlette (the ASGI toolkit FastAPI is made of) served by uvicorn: both well kept, both already
here with Streamlit, and Starlette alone is enough for four routes with no schema generation.

- `POST /v1/images/generations`: `prompt`, `n`, `size` ("64x64"), `response_format` (`b64_json`; `url` is
  refused: this server keeps no files), `model` (the served one, if named), and as extensions `seed` (image i
  of the request is drawn with seed + i), `steps` and `guidance_scale` (only the server's own: one batch runs
  one schedule). The answer is the API's: `{"created": ..., "data": [{"b64_json": PNG}]}`.
- `GET /v1/models`: the one model served. `GET /health`: 200 once the pipeline is loaded, 503 before.
  `GET /metrics`: the server's counts and queue in Prometheus' text format.
- Errors in the API's shape, `{"error": {"message", "type", "param", "code"}}`: 400 for a bad field (naming
  it and what is allowed), 401 without the bearer token when `--api-key` is set, 413 when `n` alone passes
  the queue limit, 429 when the queue is full, 503 while the pipeline loads or the server stops, 500 when
  the work failed.
- A client that goes away while its images wait or are drawn is noticed (the ASGI `http.disconnect`
  message) and its images are cancelled in the engine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from generator.serve.config import ServeConfig
from generator.serve.service import QueueFull, Service, Stopping

FIELDS = ("prompt", "n", "size", "response_format", "model", "seed", "steps", "guidance_scale", "user",
          "quality", "style", "output_format")


class BadRequest(Exception):
    """A request field the server cannot take: the field, and why (naming what is allowed)."""

    def __init__(self, param: str | None, message: str, status: int = 400, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.param, self.status, self.code, self.kind = param, status, code, kind


def error(status: int, message: str, param: str | None = None, code: str | None = None,
          kind: str = "invalid_request_error") -> JSONResponse:
    """An error in the OpenAI API's shape."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def parse(body: bytes, cfg: ServeConfig, model_id: str) -> dict:
    """The request's fields, checked: prompt, n, seed (None: the server's), or BadRequest naming the bad one."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(None, f"the body must be a JSON object; it did not parse ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest(None, f"the body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise BadRequest(unknown[0], f"unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt", f"prompt must be a non-empty string, got {prompt!r}")
    n = data.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= cfg.max_n:
        raise BadRequest("n", f"n must be a whole number from 1 to {cfg.max_n}, got {n!r}")
    size = data.get("size", cfg.size)
    if size not in (cfg.size, "auto", None):
        raise BadRequest("size", f"size must be {cfg.size} (the one size this server draws) or auto, got {size!r}")
    fmt = data.get("response_format") or "b64_json"
    if fmt != "b64_json":
        raise BadRequest("response_format", f"response_format must be b64_json (this server keeps no files to "
                         f"link to), got {fmt!r}")
    model = data.get("model")
    if model is not None and model != model_id:
        raise BadRequest("model", f"model must be {model_id!r} (the one this server serves), got {model!r}",
                         status=404, code="model_not_found")
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise BadRequest("seed", f"seed must be a whole number >= 0, got {seed!r}")
    steps = data.get("steps", cfg.steps)
    if steps != cfg.steps or isinstance(steps, bool):
        raise BadRequest("steps", f"steps must be {cfg.steps} (the server's: one batch runs one schedule), "
                         f"got {steps!r}")
    guidance = data.get("guidance_scale", cfg.guidance)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance != cfg.guidance:
        raise BadRequest("guidance_scale", f"guidance_scale must be {cfg.guidance} (the server's), got {guidance!r}")
    return {"prompt": prompt, "n": n, "seed": seed}


def png_b64(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def prometheus(metrics: dict, cfg: ServeConfig) -> str:
    """The server's figures in Prometheus' text exposition format (counters end in _total)."""
    helps = {
        "images_taken": ("counter", "Images accepted into the queue."),
        "images_finished": ("counter", "Images drawn and answered."),
        "images_cancelled": ("counter", "Images whose client went away before the answer."),
        "images_failed": ("counter", "Images whose work raised an error."),
        "requests_refused": ("counter", "Requests refused because the queue was full."),
        "launches": ("counter", "Units of work run (a whole job, or one stream step)."),
        "levels_written": ("counter", "Load levels (the traffic between idle spells) written to the spool."),
        "queue_images": ("gauge", "Images waiting to start."),
        "queue_limit": ("gauge", "The most images that may wait."),
        "last_batch_rows": ("gauge", "Images in the last unit of work."),
        "ready": ("gauge", "1 once the pipeline is loaded."),
    }
    lines = []
    for key, (kind, text) in helps.items():
        name = f"generator_{key}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}",
                  f'{name}{{policy="{cfg.policy}"}} {metrics[key]}']
    return "\n".join(lines) + "\n"


def build_app(cfg: ServeConfig, service: Service | None = None) -> Starlette:
    """The ASGI app; its lifespan starts the engine (loading the pipeline in the engine's thread) and stops it
    (finishing what was taken, writing the last records)."""
    service = service or Service(cfg)

    def not_ready() -> JSONResponse | None:
        if not service.ready.is_set():
            return error(503, "the model is loading; try again shortly", code="loading", kind="server_error")
        if service.load_error:
            return error(503, f"the model could not be loaded: {service.load_error}", code="load_failed",
                         kind="server_error")
        return None

    def unauthorised(request: Request) -> JSONResponse | None:
        if cfg.api_key is None:
            return None
        if request.headers.get("authorization", "") != f"Bearer {cfg.api_key}":
            return error(401, "a bearer token is needed: Authorization: Bearer <the server's --api-key>",
                         code="invalid_api_key", kind="authentication_error")
        return None

    async def generations(request: Request):
        if (refusal := unauthorised(request) or not_ready()) is not None:
            return refusal
        # 1. The fields, checked.
        try:
            fields = parse(await request.body(), cfg, service.model_id)
        except BadRequest as bad:
            return error(bad.status, str(bad), bad.param, bad.code, bad.kind)
        if (why := service.prompt_too_long(fields["prompt"])) is not None:
            return error(400, why, "prompt", "prompt_too_long")
        n, seed = fields["n"], fields["seed"]
        # 2. Into the queue (one request per image).
        seeds = [seed + i for i in range(n)] if seed is not None else None
        try:
            ticket = service.submit([fields["prompt"]] * n, seeds)
        except QueueFull as full:
            return error(413 if full.too_big else 429, str(full), "n" if full.too_big else None,
                         "queue_full", kind="server_error" if not full.too_big else "invalid_request_error")
        except Stopping as stop:
            return error(503, str(stop), code="stopping", kind="server_error")
        # 3. Wait for the images, or for the client to go away.
        images = await _wait(request, ticket, service)
        if images is None:
            return error(499, "the client went away", code="cancelled")
        if isinstance(images, Exception):
            return error(500, f"the work failed: {images}", code="generation_failed", kind="server_error")
        data = await run_in_threadpool(lambda: [{"b64_json": png_b64(image)} for image in images])
        return JSONResponse({"created": int(time.time()), "data": data})

    async def models(request: Request):
        if (refusal := unauthorised(request) or not_ready()) is not None:
            return refusal
        return JSONResponse({"object": "list", "data": [
            {"id": service.model_id, "object": "model", "created": 0, "owned_by": "generator",
             "policy": cfg.policy, "max_batch": service.policy.max_batch, "size": cfg.size, "steps": cfg.steps,
             "device": cfg.device, "device_name": service.device_name}]})

    async def health(request: Request):
        refusal = not_ready()
        return refusal or JSONResponse({"status": "ok", "model": service.model_id, "policy": cfg.policy})

    async def metrics(request: Request):
        return PlainTextResponse(prometheus(service.metrics(), cfg),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    return Starlette(routes=[Route("/v1/images/generations", generations, methods=["POST"]),
                             Route("/v1/models", models), Route("/health", health), Route("/metrics", metrics)],
                     lifespan=lifespan)


async def _wait(request: Request, ticket, service: Service):
    """The ticket's images; None if the client disconnected first (the images are cancelled); the exception if
    the work failed."""
    done = asyncio.wrap_future(ticket.future)

    async def gone():
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({done, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if done.done() and not done.cancelled():
        exc = done.exception()
        return exc if exc is not None else done.result()
    service.cancel(ticket)
    return None


@contextlib.contextmanager
def running(cfg: ServeConfig, service: Service | None = None):
    """The server on a thread of this process (the demo's and the bench's): yields its base URL
    (http://host:port/v1) once it answers, on `cfg.port` (0: a free one, bound here before it starts); on leaving,
    it stops as on Ctrl-C: the requests in flight finished, the last records written."""
    service = service or Service(cfg)
    sock = listen(cfg)
    server = uvicorn.Server(_config(cfg, service))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
    thread.start()
    try:
        while not server.started:  # startup (the lifespan) done: the engine thread is loading the pipeline
            if not thread.is_alive():
                raise RuntimeError(f"the server on {cfg.host}:{sock.getsockname()[1]} stopped as it started")
            time.sleep(0.01)
        service.ready.wait()
        if service.load_error:
            raise ValueError(f"the server's model could not be loaded: {service.load_error}")
        yield f"http://{cfg.host}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def listen(cfg: ServeConfig) -> socket.socket:
    """The listening socket, with TCP_NODELAY (the connections it accepts inherit it). Without it a keep-alive
    connection waited about 40 ms a request: the response goes out in two writes, and the second waited for
    the ACK of the first, which the client delays (Nagle's algorithm against delayed ACK)."""
    sock = socket.create_server((cfg.host, cfg.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _config(cfg: ServeConfig, service: Service) -> uvicorn.Config:
    return uvicorn.Config(build_app(cfg, service), log_level="warning", timeout_graceful_shutdown=30)


def serve(cfg: ServeConfig) -> None:
    """Run the server until Ctrl-C (uvicorn finishes the requests in flight, then the lifespan stops the
    engine, which writes the last records)."""
    sock = listen(cfg)
    print(f"serving the OpenAI Images API on http://{cfg.host}:{sock.getsockname()[1]}/v1 (policy {cfg.policy}, "
          f"{cfg.size}, {cfg.steps} steps); Ctrl-C stops", flush=True)
    uvicorn.Server(_config(cfg, Service(cfg))).run(sockets=[sock])
