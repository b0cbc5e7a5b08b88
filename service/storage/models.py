"""The provenance schema (DESIGN.md, Storage). Names are plain: admins query them directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.statuses import RunStatus, TaskStatus, VersionStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class SeedSet(Base):
    __tablename__ = "seed_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_format: Mapped[str] = mapped_column(String(20))
    task_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_lease", "status", "lease_expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="bootstrap")  # bootstrap | batch
    seed_set_id: Mapped[int] = mapped_column(ForeignKey("seed_sets.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED.value)
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(50))
    target_tasks: Mapped[int] = mapped_column(Integer)
    iteration: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    generated_count: Mapped[int] = mapped_column(Integer, default=0)
    accepted_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    # Rejections by rule, kept with the counters so progress never needs a GROUP BY over tasks.
    rejected_by_rule: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'")
    )
    parse_failure_count: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    inference_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Generation(Base):
    """One inference call, with everything needed to reproduce it."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    iteration: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    backend: Mapped[str] = mapped_column(String(50))
    model_name: Mapped[str] = mapped_column(String(200))
    model_path: Mapped[str] = mapped_column(Text)
    model_hash: Mapped[str] = mapped_column(String(100))
    engine: Mapped[str] = mapped_column(String(50))
    engine_version: Mapped[str] = mapped_column(String(50))
    # What a server reports about its weights, and the precision the engine ran in.
    model_revision: Mapped[str] = mapped_column(Text, default="", server_default="")
    dtype: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # Which server and API answered (openai backend), and the messages sent on the chat API.
    server: Mapped[str] = mapped_column(Text, default="", server_default="")
    endpoint: Mapped[str] = mapped_column(String(20), default="", server_default="")
    messages: Mapped[list[Any] | None] = mapped_column(JSONType)
    template_name: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[str] = mapped_column(String(20))
    template_sha256: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    chat_wrapped: Mapped[bool] = mapped_column(Boolean)
    few_shot_ids: Mapped[list[Any]]
    sampling: Mapped[dict[str, Any]]
    seed: Mapped[int | None] = mapped_column(Integer)
    completion: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(20))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_log: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ParseFailure(Base):
    __tablename__ = "parse_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_run_status", "run_id", "status"),
        Index("ix_tasks_seed_set_origin", "seed_set_id", "origin"),
        Index("ix_tasks_reject_rule", "reject_rule"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(10))  # seed | machine
    seed_set_id: Mapped[int] = mapped_column(ForeignKey("seed_sets.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    iteration: Mapped[int | None] = mapped_column(Integer)
    generation_id: Mapped[str | None] = mapped_column(ForeignKey("generations.id"), index=True)
    classification_generation_id: Mapped[str | None] = mapped_column(ForeignKey("generations.id"))
    instances_generation_id: Mapped[str | None] = mapped_column(ForeignKey("generations.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    instruction: Mapped[str] = mapped_column(Text)
    is_classification: Mapped[bool | None] = mapped_column(Boolean)
    turns: Mapped[list[Any] | None] = mapped_column(JSONType)
    expected_refusal: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))  # service.statuses.TaskStatus
    reject_rule: Mapped[str | None] = mapped_column(String(50))
    reject_rule_version: Mapped[str | None] = mapped_column(String(20))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    nearest_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    similarity: Mapped[float | None] = mapped_column(Float)
    # An evolved task (Evol-Instruct): the task it grew from and the operation (migration 0009).
    parent_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    operation: Mapped[str | None] = mapped_column(String(30))
    # 1 KB a task that only the duplicate index reads: not loaded unless asked for (undefer).
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskEmbedding(Base):
    """A pool task's sentence embedding, computed once and reused at every claim of a run.

    ``model`` is the encoder's :attr:`filters.embeddings.SentenceEncoder.model_id` (name,
    version or weights' fingerprint, encoding version): vectors of another model or encoding
    are never mixed in. ``vector`` is the unit vector as little-endian float32 bytes.
    """

    __tablename__ = "task_embeddings"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    dimension: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("task_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    idx: Mapped[int] = mapped_column(Integer)
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.ACCEPTED.value)
    reject_rule: Mapped[str | None] = mapped_column(String(50))
    reject_rule_version: Mapped[str | None] = mapped_column(String(20))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    generation_id: Mapped[str | None] = mapped_column(ForeignKey("generations.id"))


class PreferenceComparison(Base):
    """Two sampled responses to one prompt, judged in both orders (a preference run).

    The prompt is a task of the run (``operation`` ``preference``) and its k responses are
    its instances; every pair of them is one row. ``forward`` and ``backward`` are the signed
    preferences for response 1 with it shown first and second (None: that reply was not
    read; real numbers in [-3, 3] from a ``logprob`` judge), ``length_controlled`` the same
    at equal length. ``outcome`` is
    ``filters.judge.comparison_outcome``; only ``kept`` rows are preference pairs, with
    ``chosen_instance_id`` and ``margin``. ``replies`` holds every judge reply as read
    (order, text, value, form, failure reason).
    """

    __tablename__ = "preference_comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    response_1_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    response_2_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    forward: Mapped[float | None] = mapped_column(Float)
    backward: Mapped[float | None] = mapped_column(Float)
    length_controlled: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))
    chosen_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    margin: Mapped[float | None] = mapped_column(Float)
    length_only: Mapped[bool] = mapped_column(Boolean, default=False)
    judge_model: Mapped[str] = mapped_column(String(1000))
    # text: the judge's written verdict read; logprob: its label probabilities (filters.judge).
    judge_mode: Mapped[str] = mapped_column(String(20), default="text", server_default="text")
    rubric_version: Mapped[str] = mapped_column(String(20))
    rubric_sha256: Mapped[str] = mapped_column(String(64))
    replies: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Score(Base):
    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    scorer: Mapped[str] = mapped_column(String(50))
    scorer_version: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunEvent(Base):
    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    iteration: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvalSet(Base):
    __tablename__ = "eval_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvalItem(Base):
    __tablename__ = "eval_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    eval_set_id: Mapped[int] = mapped_column(ForeignKey("eval_sets.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    instruction: Mapped[str] = mapped_column(Text)
    inputs: Mapped[list[Any]]
    outputs: Mapped[list[Any]]


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index("ix_dataset_versions_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int] = mapped_column(Integer)
    # service.statuses.VersionStatus: queued | building (under a lease) | ready | failed
    status: Mapped[str] = mapped_column(String(20), default=VersionStatus.QUEUED.value)
    # The export job's lease: a version is built by whoever holds it (a worker, or the API
    # for small exports); an expired lease makes the version claimable again.
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    spec: Mapped[dict[str, Any]]
    spec_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]]
    path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class DatasetItem(Base):
    __tablename__ = "dataset_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    split: Mapped[str] = mapped_column(String(20))


class TrainingRun(Base):
    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sft trains on a dataset version; dpo on a preference run's exported pairs.
    dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id"), index=True
    )
    method: Mapped[str] = mapped_column(String(10), default="sft", server_default="sft")
    preference_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    output_dir: Mapped[str] = mapped_column(Text)
    base_model: Mapped[str] = mapped_column(Text)
    base_model_hash: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    metrics: Mapped[dict[str, Any]]
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # The viewer's last logout with this key: its sessions issued before then are over.
    viewer_logout_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first response to a POST carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "route", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    route: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
