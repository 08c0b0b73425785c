"""The server's settings: embedded defaults, overridden by a config file, then by `HYBRID_*` env vars.

Every field has a safe default, so `python -m month6_system serve` runs with no configuration:
loopback only, data under `runs/month6/data`, the offline models. A TOML or JSON file named by
`HYBRID_CONFIG_FILE` (or passed as `Settings.from_file(path)`) sets fields by name; an environment
variable `HYBRID_<FIELD>` overrides the file; keyword arguments (the `serve` command's flags)
override both. Unknown keys are an error rather than a silently ignored typo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shared.errors import UserError

CONFIG_FILE_ENV = "HYBRID_CONFIG_FILE"
# Below this confidence month 3's reader's answer is not trusted and the transcript is searched instead.
MEMORY_CONFIDENCE = 0.9


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYBRID_", extra="forbid", frozen=True)

    data_dir: Path = Field(Path("runs/month6/data"), description="SQLite file, Chroma store, traces")
    host: str = Field("127.0.0.1", description="listen address; loopback unless you mean to expose it")
    port: int = Field(8000, ge=0, le=65535, description="listen port (0: any free port)")
    model_name: str = Field("hybrid-assistant", min_length=1, description="the model id /v1/models lists")
    context_window: int = Field(2048, ge=64, description="prompt + completion tokens a request may need")
    default_max_tokens: int = Field(256, ge=1, description="completion budget when a request sets none")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="larger request bodies get 413")
    embedding_model: str = Field("all-MiniLM-L6-v2", min_length=1, description="what /v1/embeddings serves")
    max_embedding_inputs: int = Field(256, ge=1, description="texts one /v1/embeddings request may hold")
    trace_limit: int = Field(1000, ge=1, description="recent traces kept in memory for /v1/traces/{id}")
    max_tool_steps: int = Field(4, ge=1, le=16, description="server tool runs one request may make")
    toolcall_adapter: str = Field("", description="tool-call LoRA folder (default: month 2's toolcall-mixed-lora)")
    api_keys: str = Field("auto", pattern="^(auto|required|off)$",
                          description="auto: a Bearer key is needed once `keys create` made a live one; "
                                      "required: always; off: never (every request is the default scope)")
    rate_limit_per_minute: int = Field(600, ge=0, description="requests a minute per API key on /v1 routes "
                                                                "(0: no limit); over it: 429 with Retry-After")
    rate_limit_burst: int = Field(60, ge=1, description="requests a key may send at once before the rate applies")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="origins a browser page may call the API from (default none: "
                                                "the web page at / is same-origin and needs no CORS)")
    generation_timeout_s: float = Field(120.0, gt=0, description="a longer generation stops there "
                                                                  "(finish_reason length, the trace says why)")
    tool_timeout_s: float = Field(10.0, gt=0, description="a server tool's run stops there (its result: an error)")
    chroma_url: str = Field("", pattern=r"^(|https?://[^/:]+(:\d+)?/?)$",
                            description="a Chroma server (`chroma run`) for the documents, e.g. http://chroma:8000 "
                                        "(default: Chroma embedded in data_dir/store)")
    database_url: str = Field("", pattern=r"^(|postgres(ql)?://\S+)$",
                              description="PostgreSQL for the transcript, traces, API keys and rate limits, shared "
                                          "by every replica, e.g. postgresql://assistant@db:5432/assistant "
                                          "(default: SQLite files in data_dir, one process)")
    upstream_url: str = Field("", pattern=r"^(|https?://\S+)$",
                              description="an OpenAI-compatible server that writes the answers (vLLM, llama.cpp's "
                                          "server), e.g. http://gpu-box:8000/v1 (default: in-process transformers)")
    upstream_model: str = Field("", description="the upstream's model for general answers (default: the first it "
                                                "lists); an expert's answer uses the model named after the expert "
                                                "when the upstream lists one")
    upstream_api_key: str = Field("", description="the key the upstream wants, if any")
    long_memory: bool = Field(True, description="month 3's streaming reader keeps what each key says (about "
                                                "40 KB per key) and answers recall first; off: the transcript "
                                                "search alone")
    memory_confidence: float = Field(MEMORY_CONFIDENCE, gt=0, le=1,
                                     description="below this confidence the reader's answer is not trusted and the "
                                                 "transcript is searched")
    batch_max_size: int = Field(16, ge=1, le=64, description="concurrent answers decoded together in one batch "
                                                               "(1: one at a time)")
    batch_wait_ms: float = Field(200.0, ge=0, description="the longest a batch waits for requests in flight to "
                                                           "join it (a request alone never waits)")
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_FILE_ENV)
        if path:
            sources.append(_file_source(settings_cls, Path(path)))
        return tuple(sources)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Settings:
        """Settings from one TOML/JSON file (env vars and `overrides` still win)."""
        previous = os.environ.get(CONFIG_FILE_ENV)
        os.environ[CONFIG_FILE_ENV] = str(path)
        try:
            return load_settings(**overrides)
        finally:
            if previous is None:
                del os.environ[CONFIG_FILE_ENV]
            else:
                os.environ[CONFIG_FILE_ENV] = previous


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if not path.is_file():
        raise UserError(f"{CONFIG_FILE_ENV}={path}: no such file")
    if path.suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    if path.suffix == ".json":
        return JsonConfigSettingsSource(settings_cls, json_file=path)
    raise UserError(f"{CONFIG_FILE_ENV}={path}: expected a .toml or .json file")


def load_settings(**overrides: Any) -> Settings:
    """`Settings(...)` with a bad value (from any source) as one-line user error."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors())
        raise UserError(f"invalid settings: {problems}") from None
