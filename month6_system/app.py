"""The OpenAI-compatible HTTP API over an `Assistant`: `create_app(settings, assistant)`.

Routes: POST /v1/chat/completions (JSON, or SSE with `stream: true`), GET /v1/models[/{id}],
POST /v1/embeddings, GET /v1/traces/{id}, /v1/documents, /v1/memory, /healthz, /readyz, /metrics (Prometheus).

API keys (keys.py): every /v1 route takes `Authorization: Bearer <key>` once a live key exists
(`Settings.api_keys`); the key's name is the request's scope (`Turn.key`), and each route reads and
writes only that scope's conversations, memory, traces and documents. A missing or wrong key is a 401.
Limits: a body over `max_body_bytes` is a 413; a scope over its rate (`rate_limit_per_minute`, a token
bucket per key) a 429 with `Retry-After`; no CORS headers unless `cors_origins` names the sites allowed; a
500 names the exception's type only, never its message or a stack trace.

The server holds no conversation state: each request carries its messages, and the assistant (given,
or built by `month6_system.agent.build_assistant(settings)` in the background so `/readyz` can say
when it is loaded) does the rest. What the server adds is the contract: strict validation with
OpenAI's error bodies, no silent truncation (a prompt that does not fit the context window with its
completion budget is a 400 stating both counts), and a check of the assistant's output against the
request (tool calls only to the request's tools and as `tool_choice` allows, JSON that parses and
validates against `response_format`'s schema): a broken assistant is a 500, never a wrong answer.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import jsonschema
from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from month6_system import protocol as p
from month6_system.keys import KeyStore
from month6_system.limits import RateLimiter, SharedRateLimiter
from month6_system.settings import Settings
from month6_system.sse import sse_stream
from month6_system.turn import DEFAULT_KEY, Assistant, BadTurn, Turn, TurnResult

log = logging.getLogger(__name__)
OWNER = "hybrid-ai-six-months"
# module level: the route signatures' annotations are resolved against the module's globals
BEARER = HTTPBearer(auto_error=False, description="an API key from `python -m month6_system keys create NAME`")
WEB = Path(__file__).with_name("web")
# The page runs only its own script and talks only to this server; no other site may frame it.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
ERRORS = {status: {"model": p.ErrorResponse} for status in (400, 401, 404, 413, 429, 500, 503)}


class Metrics:
    """Per-app registry, so several apps in one process (the tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hybrid_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.seconds = Histogram("hybrid_request_seconds", "time to the response's headers", ["route"],
                                 registry=self.registry)
        self.first_token = Histogram("hybrid_time_to_first_token_seconds", "streamed chat: time to first text",
                                     registry=self.registry)
        self.tokens = Counter("hybrid_tokens", "chat tokens by kind", ["kind"], registry=self.registry)


class TraceStore:
    """The last `limit` traces served, by id, each with the scope it belongs to (the agent may keep a
    durable copy of its own)."""

    def __init__(self, limit: int) -> None:
        self.limit, self._items, self._lock = limit, OrderedDict[str, tuple[str, dict[str, Any]]](), threading.Lock()

    def put(self, trace_id: str, key: str, trace: dict[str, Any]) -> None:
        with self._lock:
            self._items[trace_id] = (key, trace)
            self._items.move_to_end(trace_id)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, trace_id: str, key: str) -> dict[str, Any] | None:
        """The trace, if scope `key` made it."""
        with self._lock:
            owner, trace = self._items.get(trace_id, (None, None))
        return trace if owner == key else None


def _limiter(settings: Settings) -> RateLimiter | SharedRateLimiter | None:
    """No limit, one per process, or (with a database_url) one shared by every replica."""
    per_minute, burst = settings.rate_limit_per_minute, settings.rate_limit_burst
    if not per_minute:
        return None
    if not settings.database_url:
        return RateLimiter(per_minute, burst)
    from month6_system.storage import MIGRATIONS
    from shared.migrations import migrate
    from shared.sql import connect

    db = connect(settings.database_url)
    migrate(db, MIGRATIONS)
    return SharedRateLimiter(db, per_minute, burst)


class State:
    def __init__(self, settings: Settings, assistant: Assistant | None) -> None:
        self.settings, self.assistant = settings, assistant
        self.load_error: str | None = None
        self.metrics, self.traces = Metrics(), TraceStore(settings.trace_limit)
        self.keys = KeyStore(settings.data_dir, settings.database_url)
        self.limiter = _limiter(settings)
        self._embedder: Any = None
        self._embedder_lock = threading.Lock()

    def ready_assistant(self) -> Assistant:
        if self.assistant is None:
            why = f"failed to load: {self.load_error}" if self.load_error else "still loading"
            raise p.APIError(503, f"the assistant is {why}; GET /readyz says when it is ready",
                             type="server_error", code="not_ready")
        return self.assistant

    def load_assistant(self) -> None:
        try:
            from month6_system.agent import build_assistant

            self.assistant = build_assistant(self.settings)
        except Exception as err:  # reported by /readyz and every chat request, not a dead server
            self.load_error = f"{type(err).__name__}: {err}"

    def embedder(self) -> Any:
        from month5_rag.embeddings import load_embedder
        from shared.errors import UserError

        with self._embedder_lock:
            if self._embedder is None:
                try:
                    self._embedder = load_embedder(self.settings.embedding_model)
                except UserError as err:
                    raise p.APIError(503, str(err), type="server_error", code="embedder_unavailable") from None
            return self._embedder


class BodyLimit:
    """413 for a body over `limit` bytes, by Content-Length or by counting a chunked upload."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send)
            return
        seen, started, over = 0, False, False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                raise _TooLarge  # FastAPI turns errors while reading the body into a 400: see `tracked`
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a cut-off body; the 413 goes out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            pass
        if over and not started:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        error = p.APIError(413, f"the request body is over the server's limit of {self.limit} bytes",
                           code="request_too_large")
        await JSONResponse(error.body(), status_code=413)({"type": "http"}, _no_receive, send)


class ServerErrors:
    """A 500 in OpenAI's error shape for an exception no handler took. It names the exception's type only:
    the message and the stack trace go to the server's log, never to the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                error = p.APIError(500, f"internal error: {type(err).__name__}", type="server_error")
                await JSONResponse(error.body(), status_code=500)(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    settings = settings or Settings()
    state = State(settings, assistant)

    async def lifespan(app: FastAPI):
        if state.assistant is None:
            threading.Thread(target=state.load_assistant, name="load-assistant", daemon=True).start()
        yield

    app = FastAPI(title="Hybrid AI assistant", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible API of the month-6 Enterprise Hybrid Assistant.")
    app.state.hybrid = state
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:  # closed by default: no CORS headers, so other sites' pages cannot read answers
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(ServerErrors)  # inside the metrics middleware, which counts its 500s
    _add_error_handlers(app)
    _add_metrics_middleware(app, state.metrics)

    def scope(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> str:
        """The request's scope (the name of its API key, or the default scope while keys are not in use),
        within the scope's rate limit."""
        name = authenticate(credentials)
        wait = state.limiter.take(name) if state.limiter is not None else 0.0
        if wait > 0:
            raise p.APIError(429, f"Rate limit reached for key {name!r}: {settings.rate_limit_per_minute} requests "
                                  f"per minute (bursts of {settings.rate_limit_burst}). Try again in {wait:.1f} s.",
                             type="requests", code="rate_limit_exceeded",
                             headers={"Retry-After": str(math.ceil(wait))})
        return name

    def authenticate(credentials: HTTPAuthorizationCredentials | None) -> str:
        mode = settings.api_keys
        if mode == "off" or (mode == "auto" and not state.keys.any_live()):
            return DEFAULT_KEY
        if credentials is None:
            raise p.APIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                                  "(keys come from `python -m month6_system keys create NAME`).",
                             code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
        name = state.keys.scope(credentials.credentials)
        if name is None:
            shown = credentials.credentials[:10] + "..." if len(credentials.credentials) > 10 else "<short>"
            raise p.APIError(401, f"Incorrect or revoked API key provided: {shown}", code="invalid_api_key",
                             headers={"WWW-Authenticate": "Bearer"})
        return name

    authenticated = [Depends(scope)]

    @app.post("/v1/chat/completions", response_model=p.ChatCompletion, responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
              "description": "a chat.completion, or with stream: true server-sent chat.completion.chunk events"},
        **ERRORS})
    def chat_completions(body: p.ChatCompletionRequest, key: str = Depends(scope)) -> Any:
        p.check_model(body.model, [settings.model_name])
        p.check_chat_request(body)
        bot = state.ready_assistant()
        turn = _turn(body, bot, settings, key)
        bot.check(turn)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            events = _stream_events(bot, turn, body, state, include_usage)
            return StreamingResponse(sse_stream(events), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        result = bot.run(turn)
        check_output(result, body)
        trace_id = _keep_trace(result, state, key)
        return p.ChatCompletion(
            id=_completion_id(), created=int(time.time()), model=settings.model_name,
            choices=[p.Choice(index=0, message=p.ResponseMessage(content=result.content,
                                                                 tool_calls=_tool_calls_out(result) or None),
                              finish_reason=result.finish_reason)],
            usage=_usage(result), trace_id=trace_id, trace=result.trace)

    @app.get("/v1/models", response_model=p.ModelList, dependencies=authenticated, responses=ERRORS)
    def list_models() -> p.ModelList:
        return p.ModelList(data=_model_cards(settings))

    @app.get("/v1/models/{model_id}", response_model=p.ModelCard, dependencies=authenticated, responses=ERRORS)
    def get_model(model_id: str) -> p.ModelCard:
        cards = {card.id: card for card in _model_cards(settings)}
        p.check_model(model_id, cards)
        return cards[model_id]

    @app.post("/v1/embeddings", response_model=p.EmbeddingList, dependencies=authenticated, responses=ERRORS)
    def embeddings(body: p.EmbeddingRequest) -> p.EmbeddingList:
        p.check_model(body.model, [settings.embedding_model])
        texts = [body.input] if isinstance(body.input, str) else body.input
        if len(texts) > settings.max_embedding_inputs:
            raise p.APIError(400, f"input holds {len(texts)} texts; at most {settings.max_embedding_inputs} "
                                  "per request", param="input")
        embedder = state.embedder()
        if body.dimensions is not None and body.dimensions != embedder.dim:
            raise p.APIError(400, f"{settings.embedding_model} makes {embedder.dim}-dimensional vectors only",
                             param="dimensions")
        vectors = embedder.embed_passages(texts)
        tokens = sum(embedder.count_tokens(texts))
        data = [p.Embedding(index=i, embedding=_encode_vector(v, body.encoding_format)) for i, v in enumerate(vectors)]
        return p.EmbeddingList(data=data, model=settings.embedding_model,
                               usage=p.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    @app.get("/v1/traces/{trace_id}", response_model=p.Trace, responses=ERRORS)
    def get_trace(trace_id: str, key: str = Depends(scope)) -> p.Trace:
        trace = state.traces.get(trace_id, key)
        if trace is None and (storage := getattr(state.assistant, "storage", None)) is not None:
            trace = storage.get_trace(trace_id, key)  # served by another replica, or before a restart
        if trace is None:
            raise p.APIError(404, f"no trace {trace_id!r} (the server keeps the last {settings.trace_limit})",
                             param="trace_id", code="trace_not_found")
        return p.Trace(id=trace_id, trace=trace)

    def records() -> Any:
        records = getattr(state.ready_assistant(), "records", None)
        if records is None:
            raise p.APIError(501, "this assistant keeps no documents or memory", type="server_error")
        return records

    @app.get("/v1/documents", responses=ERRORS)
    def list_documents(key: str = Depends(scope)) -> dict[str, Any]:
        return {"object": "list", "data": records().documents(key)}

    @app.post("/v1/documents", responses=ERRORS)
    def upload_documents(files: Annotated[list[UploadFile], File(min_length=1)],
                         key: str = Depends(scope)) -> dict[str, Any]:
        """Month 5's ingestion of the uploaded files; a file it cannot read is an error in the report, not a 4xx."""
        folder = Path(settings.data_dir) / "uploads" / key
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for upload in files:
            name = Path(upload.filename or "").name
            if not name or name.startswith("."):
                raise p.APIError(400, f"an uploaded file needs a plain file name, got {upload.filename!r}",
                                 param="files")
            (folder / name).write_bytes(upload.file.read())
            paths.append(folder / name)
        return records().add_documents(key, paths)

    @app.delete("/v1/documents/{name}", responses=ERRORS)
    def delete_document(name: str, key: str = Depends(scope)) -> dict[str, Any]:
        if not records().delete_document(key, name):
            raise p.APIError(404, f"no document named {name!r}; GET /v1/documents lists this key's documents",
                             param="name", code="document_not_found")
        return {"id": name, "object": "document", "deleted": True}

    @app.get("/v1/memory", responses=ERRORS)
    def list_memory(key: str = Depends(scope)) -> dict[str, Any]:
        return {"object": "list", "data": records().memory(key)}

    @app.delete("/v1/memory", responses=ERRORS)
    def forget_memory(key: str = Depends(scope)) -> dict[str, Any]:
        return {"object": "memory", "deleted": records().forget(key)}

    @app.get("/healthz", response_model=p.Health)
    def healthz() -> p.Health:
        return p.Health(status="ok")

    @app.get("/readyz", response_model=p.Health, responses={503: {"model": p.Health}})
    def readyz() -> Any:
        if state.assistant is not None:
            return p.Health(status="ready")
        detail = f"failed to load: {state.load_error}" if state.load_error else "loading the assistant"
        return JSONResponse(p.Health(status="not ready", detail=detail).model_dump(), status_code=503)

    @app.get("/", include_in_schema=False)
    def chat_page() -> FileResponse:
        """The web chat page (web/): it calls the /v1 routes with the key typed into it."""
        return FileResponse(WEB / "index.html", headers=PAGE_HEADERS)

    app.mount("/web", StaticFiles(directory=WEB), name="web")

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(p.APIError)
    async def api_error(request: Request, err: p.APIError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{**e, "loc": tuple(e["loc"])[1:] if tuple(e["loc"])[:1] == ("body",) else tuple(e["loc"])}
                  for e in err.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            error = p.APIError(400, "the request body is not valid JSON")
        else:  # a multipart body comes as FormData: its field names are the parameters
            body = dict(err.body) if isinstance(err.body, FormData) else err.body
            error = p.validation_error(errors, body)
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        error = p.APIError(err.status_code, str(err.detail))
        headers = dict(err.headers or {})
        if err.status_code == 405:  # Starlette's Allow names the first route on the path only
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(error.body(), status_code=err.status_code, headers=headers)

    @app.exception_handler(BadTurn)
    async def bad_turn(request: Request, err: BadTurn) -> JSONResponse:
        return JSONResponse(p.APIError(400, str(err)).body(), status_code=400)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the routes on the request's path take."""
    methods: set[str] = set()
    for route in request.app.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _add_metrics_middleware(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.seconds.labels(route).observe(time.perf_counter() - start)
        return response


def _turn(body: p.ChatCompletionRequest, bot: Assistant, settings: Settings, key: str) -> Turn:
    """The request as the assistant's `Turn`, after the context-window check (no silent truncation)."""
    messages = body.plain_messages()
    prompt = bot.count_tokens(messages)
    asked = body.max_completion_tokens or body.max_tokens
    window = settings.context_window
    budget = asked if asked is not None else min(settings.default_max_tokens, window - prompt)
    if prompt + max(budget, 1) > window:
        wanted = f"{prompt} in the messages" + (f", {asked} in the completion" if asked is not None else "")
        raise p.APIError(400, f"This model's maximum context length is {window} tokens. However, you requested "
                              f"{prompt + (asked or 0)} tokens ({wanted}). Please reduce the length of the "
                              "messages or the completion.", param="messages", code="context_length_exceeded")
    choice = body.tool_choice
    return Turn(
        messages=messages,
        tools=[tool.model_dump(exclude_none=True) for tool in body.tools or []],
        # "auto" even without client tools (OpenAI's default then is "none"): the server has tools of its own
        tool_choice=choice.model_dump() if isinstance(choice, p.NamedToolChoice) else choice or "auto",
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=body.response_format.model_dump(by_alias=True, exclude_none=True)
        if body.response_format is not None else None,
        max_tokens=budget,
        temperature=body.temperature if body.temperature is not None else 0.0,
        top_p=body.top_p if body.top_p is not None else 1.0,
        key=key,
        conversation=(body.metadata or {}).get("conversation_id", ""),
    )


def check_output(result: TurnResult, body: p.ChatCompletionRequest) -> None:
    """The assistant's answer keeps the request's contract, or a 500 says how it broke it."""
    def broken(why: str) -> p.APIError:
        return p.APIError(500, f"the assistant's output broke the request's contract: {why}", type="server_error",
                          code="invalid_assistant_output")

    names = {tool.function.name for tool in body.tools or []}
    calls = result.tool_calls
    choice = body.tool_choice
    for call in calls:
        if call.name not in names:
            raise broken(f"a call to {call.name!r}, which is not in the request's tools")
        try:
            arguments = json.loads(call.arguments)
        except json.JSONDecodeError:
            raise broken(f"the arguments of {call.name!r} are not JSON") from None
        if not isinstance(arguments, dict):
            raise broken(f"the arguments of {call.name!r} are not a JSON object")
    if calls and choice == "none":
        raise broken("tool calls although tool_choice is 'none'")
    if not calls and (choice == "required" or isinstance(choice, p.NamedToolChoice)):
        raise broken("no tool call although tool_choice requires one")
    if isinstance(choice, p.NamedToolChoice) and any(c.name != choice.function.name for c in calls):
        raise broken(f"a call to another function than the named {choice.function.name!r}")
    if len(calls) > 1 and not body.parallel_tool_calls:
        raise broken("several tool calls although parallel_tool_calls is false")
    if (result.finish_reason == "tool_calls") != bool(calls):
        raise broken(f"finish_reason {result.finish_reason!r} with {len(calls)} tool call(s)")
    fmt = body.response_format
    if calls or isinstance(fmt, p.TextFormat) or fmt is None or result.finish_reason == "length":
        return
    try:
        value = json.loads(result.content or "")
    except json.JSONDecodeError:
        raise broken("the content is not JSON although response_format asks for it") from None
    if isinstance(fmt, p.JSONObjectFormat) and not isinstance(value, dict):
        raise broken("the content is not a JSON object")
    if isinstance(fmt, p.JSONSchemaResponseFormat) and fmt.json_schema.schema_ is not None:
        try:
            jsonschema.validate(value, fmt.json_schema.schema_)
        except jsonschema.ValidationError as err:
            raise broken(f"the content does not validate against the schema: {err.message}") from None


def _stream_events(bot: Assistant, turn: Turn, body: p.ChatCompletionRequest, state: State,
                   include_usage: bool) -> Iterator[dict[str, Any]]:
    """The chunks of one streamed completion; an error after the first byte becomes an `error` event."""
    model, created, cid = state.settings.model_name, int(time.time()), _completion_id()

    def chunk(delta: p.Delta, finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return p.ChatCompletionChunk(id=cid, created=created, model=model, choices=[
            p.ChunkChoice(delta=delta, finish_reason=finish)], **extra).model_dump(exclude_none=True)

    start = time.perf_counter()
    yield chunk(p.Delta(role="assistant", content=""))
    try:
        result: TurnResult | None = None
        first = True
        for piece in bot.stream(turn):
            if isinstance(piece, TurnResult):
                result = piece
                break
            if piece:
                if first:
                    state.metrics.first_token.observe(time.perf_counter() - start)
                    first = False
                yield chunk(p.Delta(content=piece))
        if result is None:
            raise p.APIError(500, "the assistant's stream ended without its result", type="server_error",
                             code="invalid_assistant_output")
        check_output(result, body)
        for index, call in enumerate(result.tool_calls):
            # The name first, then the arguments: clients must accumulate deltas by `index`.
            yield chunk(p.Delta(tool_calls=[p.ToolCallDelta(index=index, id=call.id, type="function",
                                                            function=p.FunctionDelta(name=call.name, arguments=""))]))
            yield chunk(p.Delta(tool_calls=[p.ToolCallDelta(index=index,
                                                            function=p.FunctionDelta(arguments=call.arguments))]))
        trace_id = _keep_trace(result, state, turn.key)
        yield chunk(p.Delta(), result.finish_reason, trace_id=trace_id, trace=result.trace)
        if include_usage:
            yield p.ChatCompletionChunk(id=cid, created=created, model=model, choices=[],
                                        usage=_usage(result)).model_dump(exclude_none=True)
    except p.APIError as err:
        yield err.body()
    except BadTurn as err:
        yield p.APIError(400, str(err)).body()
    except Exception as err:  # the status line is sent already: say so in the stream
        yield p.APIError(500, f"internal error: {type(err).__name__}", type="server_error").body()


def _keep_trace(result: TurnResult, state: State, key: str) -> str:
    trace_id = result.trace_id or f"trace-{uuid.uuid4().hex}"
    state.traces.put(trace_id, key, result.trace)
    state.metrics.tokens.labels("prompt").inc(result.usage.prompt_tokens)
    state.metrics.tokens.labels("completion").inc(result.usage.completion_tokens)
    return trace_id


def _usage(result: TurnResult) -> p.Usage:
    u = result.usage
    return p.Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, total_tokens=u.total_tokens)


def _tool_calls_out(result: TurnResult) -> list[p.ToolCallOut]:
    return [p.ToolCallOut(id=c.id, function=p.FunctionCallOut(name=c.name, arguments=c.arguments))
            for c in result.tool_calls]


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _model_cards(settings: Settings) -> list[p.ModelCard]:
    created = 1_767_225_600  # 2026-01-01: a fixed date, so the listing is the same on every start
    return [p.ModelCard(id=settings.model_name, created=created, owned_by=OWNER),
            p.ModelCard(id=settings.embedding_model, created=created, owned_by=OWNER)]


def _encode_vector(vector: Any, encoding: str) -> list[float] | str:
    import numpy as np

    if encoding == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return [float(x) for x in vector]
