"""The OpenAI wire format the server speaks: requests validated strictly, responses built from typed models.

Strict means what OpenAI itself does: an unknown request field, a wrong type (`"stream": 0` is not a
boolean), an unsupported value (`n` other than 1, an image content part) is a 400 with OpenAI's error
body `{"error": {"message", "type", "param", "code"}}`, never a 500 and never silently ignored.
Checks that span fields (a `tool` message answering no earlier tool call, a `tool_choice` naming a
function not in `tools`) live in `check_chat_request`, so the server and the graded exercise share them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

# Field constraints OpenAI documents: function names, sampling ranges.
FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ----------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class APIError(Exception):
    """An error the server answers with OpenAI's error body and an HTTP status."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.detail = status, ErrorDetail(message=message, type=type, param=param, code=code)
        self.headers = headers  # e.g. WWW-Authenticate on a 401

    def body(self) -> dict[str, Any]:
        return ErrorResponse(error=self.detail).model_dump()


# -- request messages ------------------------------------------------------------------------------
class TextPart(Strict):
    type: Literal["text"]
    text: StrictStr


Content = StrictStr | list[TextPart]


class FunctionCall(Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    arguments: StrictStr


class ToolCallIn(Strict):
    id: Annotated[str, Field(min_length=1)]
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(Strict):
    role: Literal["system", "developer"]
    content: Content
    name: StrictStr | None = None


class UserMessage(Strict):
    role: Literal["user"]
    content: Content
    name: StrictStr | None = None


class AssistantMessage(Strict):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCallIn] | None = None
    name: StrictStr | None = None
    refusal: StrictStr | None = None


class ToolMessage(Strict):
    role: Literal["tool"]
    content: Content
    tool_call_id: Annotated[str, Field(min_length=1)]


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


def text_of(content: Content | None) -> str | None:
    """Text parts joined: the assistant sees plain strings."""
    if content is None or isinstance(content, str):
        return content
    return "".join(part.text for part in content)


# -- tools and formats -----------------------------------------------------------------------------
def _checked_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        raise ValueError(f"not a valid JSON schema: {err.message}") from None
    return schema


JSONSchema = Annotated[dict[str, Any], AfterValidator(_checked_schema)]  # a tool's parameters, a response schema


class FunctionDefinition(Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: StrictStr | None = None
    parameters: JSONSchema | None = None
    strict: StrictBool | None = None


class Tool(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: StrictStr | None = None
    schema_: JSONSchema | None = Field(None, alias="schema")
    strict: StrictBool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TextFormat(Strict):
    type: Literal["text"]


class JSONObjectFormat(Strict):
    type: Literal["json_object"]


class JSONSchemaResponseFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[TextFormat | JSONObjectFormat | JSONSchemaResponseFormat, Field(discriminator="type")]



class StreamOptions(Strict):
    include_usage: StrictBool = False


# -- the chat-completions request ------------------------------------------------------------------
class ChatCompletionRequest(Strict):
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool = True
    response_format: ResponseFormat | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=1, description="only one choice is generated")] = 1
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    seed: int | None = None
    user: StrictStr | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    metadata: dict[str, StrictStr] | None = None

    def plain_messages(self) -> list[dict[str, Any]]:
        """The messages as OpenAI JSON, content flattened to text."""
        out = []
        for message in self.messages:
            data = message.model_dump(exclude_none=True)
            if "content" in data or isinstance(message, AssistantMessage):
                data["content"] = text_of(message.content)
            out.append(data)
        return out


def parse_chat_request(body: Any, models: Collection[str]) -> ChatCompletionRequest:
    """A decoded JSON body as a request, or `APIError`: 400 for an invalid body, 404 for an unknown model."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as err:
        raise validation_error(err.errors(), body) from None
    check_model(request.model, models)
    check_chat_request(request)
    return request


def param_of(loc: Sequence[str | int], body: Any) -> str | None:
    """A pydantic error location as OpenAI names parameters, e.g. 'messages[0].content'. pydantic adds
    the union member it tried ('user', 'str', 'json_schema') to the location; walking the body keeps only
    the keys and indices that are really there (plus a final missing key)."""
    out, node = "", body
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            out, node = f"{out}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or i == len(loc) - 1):
            out, node = f"{out}.{part}" if out else part, node.get(part)
    return out or None


def validation_error(errors: Sequence[dict[str, Any]], body: Any) -> APIError:
    """pydantic's (or FastAPI's) errors as one 400: the message and parameter of the deepest error (of
    a union's failed members, the one that got furthest names the real problem)."""
    first = max(errors, key=lambda e: len(e["loc"]))
    param = param_of(first["loc"], body)
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return APIError(400, message, param=param)


def check_model(model: str, models: Collection[str]) -> None:
    if model not in models:
        raise APIError(404, f"The model '{model}' does not exist; GET /v1/models lists the models served",
                       param="model", code="model_not_found")


def check_chat_request(request: ChatCompletionRequest) -> None:
    """Cross-field checks OpenAI makes; raises `APIError(400)` naming the offending parameter."""
    names = [tool.function.name for tool in request.tools or []]
    if len(set(names)) != len(names):
        raise APIError(400, "tools: function names must be unique", param="tools")
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise APIError(400, f"tool_choice names function {choice.function.name!r}, which is not in tools",
                       param="tool_choice")
    if choice == "required" and not names:
        raise APIError(400, "tool_choice 'required' needs at least one tool in tools", param="tool_choice")
    if request.stream_options is not None and not request.stream:
        raise APIError(400, "stream_options is only allowed with stream: true", param="stream_options")
    pending: set[str] = set()  # tool_call ids an assistant message made that no tool message answered yet
    for i, message in enumerate(request.messages):
        if isinstance(message, ToolMessage):
            if message.tool_call_id not in pending:
                raise APIError(400, f"messages[{i}]: a 'tool' message must answer a preceding assistant "
                                    f"tool_calls id; {message.tool_call_id!r} is not one", param=f"messages[{i}]")
            pending.discard(message.tool_call_id)
        elif pending:
            raise _unanswered(i, pending)
        elif isinstance(message, AssistantMessage) and message.tool_calls:
            pending = {call.id for call in message.tool_calls}
    if pending:
        raise _unanswered(len(request.messages), pending)


def _unanswered(i: int, pending: set[str]) -> APIError:
    return APIError(400, f"messages[{i}]: an assistant message with tool_calls must be followed by tool messages "
                         f"answering each id; missing {sorted(pending)}", param=f"messages[{i}]")


# -- responses -------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "tool_calls"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    trace_id: str = Field("", description="GET /v1/traces/{trace_id} returns the trace again")
    trace: dict[str, Any] = Field(default_factory=dict, description="expert, tool steps, retrieval, memory, timings")


class FunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    index: int  # the openai SDK's stream helper needs it on every tool-call delta
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    trace_id: str | None = None
    trace: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingRequest(Strict):
    model: Annotated[str, Field(min_length=1)]
    input: Annotated[StrictStr, Field(min_length=1)] | Annotated[
        list[Annotated[StrictStr, Field(min_length=1)]], Field(min_length=1)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: StrictStr | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Trace(BaseModel):
    id: str
    object: Literal["trace"] = "trace"
    trace: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "ready", "not ready"]
    detail: str = ""
