"""Service configuration: one validating Settings object, read from the environment on demand."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All service settings; every field is `INSTRUCTFORGE_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="INSTRUCTFORGE_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./data/instructforge.db",
        description="SQLAlchemy URL. SQLite (default) or postgresql+psycopg://user@host/db.",
    )
    data_dir: Path = Field(Path("./data"), description="Root for local state.")
    model_cache_dir: Path = Field(
        Path("./data/model-cache"), description="Where prepared (converted) models are cached."
    )
    datasets_dir: Path = Field(
        Path("./data/datasets"), description="Where exported dataset versions are written."
    )
    models_dir: Path = Field(Path("./data/models"), description="Where trained models go.")
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db. When set, the near-duplicate index lives in Redis "
        "and is shared by every worker.",
    )
    lease_seconds: int = Field(60, ge=5, description="How long a worker's claim on a run lasts.")
    heartbeat_seconds: int = Field(10, ge=1, description="How often a worker renews its lease.")
    poll_seconds: float = Field(2.0, gt=0, description="Idle worker's wait between claims.")
    outage_retry_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a run handed back for an outage (Redis or every inference server "
        "away) waits in the queue before it is claimable again; other runs go first meanwhile.",
    )
    max_request_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest request body the API accepts."
    )
    api_key_cache_seconds: float = Field(
        10.0,
        ge=0,
        description="How long the API remembers a verified key (0: ask the database every "
        "time). A revoked key stops working within this time.",
    )
    api_threads: int = Field(
        16, ge=1, description="Worker threads per API process for database work."
    )
    api_read_connections: int = Field(
        10,
        ge=1,
        description="Database connections per API process for the reads on the event loop "
        "(runs and tasks, list and show, and API keys); a read waits for a free one.",
    )
    generate_max_prompts: int = Field(
        8, ge=1, description="Largest synchronous /v1/generate batch; bigger work goes to runs."
    )
    generate_wait_seconds: float = Field(
        30.0,
        ge=0,
        le=300,
        description="How long POST /v1/generate waits for a worker to finish its batch run "
        "before answering 202 with the run to poll.",
    )
    default_backend: str = Field("transformers", description="vllm | openai | transformers.")
    default_model: str = Field("smollm2-135m", description="Prepared model name or a path.")
    openai_base_url: str | None = Field(
        None,
        description="Base URL(s) of OpenAI-compatible servers, comma-separated, with or without "
        "the /v1 suffix (http://vllm:8000/v1); the openai backend splits and dispatches them.",
    )
    allowed_base_urls: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible servers a write key may name in backend_options.base_url "
        "(JSON list), besides those of openai_base_url; any other needs an admin key.",
    )
    allowed_model_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories under which a write key may name a model directory (JSON "
        "list), besides model_cache_dir and models_dir; any other path needs an admin key.",
    )

    viewer_secret: str | None = Field(
        None,
        description="Signs the web viewer's session cookies (/ui); unset: a random secret kept "
        "in <data_dir>/viewer-secret, shared by the API processes of that data directory.",
    )
    viewer_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="How long a viewer login lasts."
    )

    @property
    def model_roots(self) -> list[Path]:
        """Every directory a write key's model path may lie under, resolved."""
        dirs = [self.model_cache_dir, self.models_dir, *self.allowed_model_dirs]
        return [d.expanduser().resolve() for d in dirs]

    worker_metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="If set, the worker serves Prometheus metrics per inference server "
        "(requests, errors, latency, tokens/s, in flight, up) on 127.0.0.1 at this port.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment at first call (never at import)."""
    return Settings()
