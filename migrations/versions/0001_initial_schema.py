"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:39:04.127743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported, so this revision never changes when the views module does.
ALL_VIEWS = {
    "v_run_summary": """
CREATE VIEW v_run_summary AS
SELECT r.id AS run_id, r.kind, r.status, s.name AS seed_set, r.target_tasks, r.iteration,
       r.generated_count, r.accepted_count, r.rejected_count, r.parse_failure_count,
       r.prompt_tokens, r.completion_tokens, r.inference_seconds, r.wall_seconds,
       (SELECT COUNT(*) FROM tasks t WHERE t.run_id = r.id AND t.status = 'accepted')
           AS accepted_rows,
       (SELECT COUNT(*) FROM tasks t WHERE t.run_id = r.id AND t.status = 'rejected')
           AS rejected_rows,
       (SELECT COUNT(*) FROM generations g WHERE g.run_id = r.id) AS generation_calls,
       r.lease_owner, r.heartbeat_at, r.created_at, r.finished_at
FROM runs r JOIN seed_sets s ON s.id = r.seed_set_id
""",
    "v_rejections_by_rule": """
CREATE VIEW v_rejections_by_rule AS
SELECT t.run_id, 'task' AS level, t.reject_rule AS rule, t.reject_rule_version AS rule_version,
       COUNT(*) AS rejected
FROM tasks t WHERE t.status = 'rejected'
GROUP BY t.run_id, t.reject_rule, t.reject_rule_version
UNION ALL
SELECT t.run_id, 'instance' AS level, i.reject_rule AS rule, i.reject_rule_version AS rule_version,
       COUNT(*) AS rejected
FROM instances i JOIN tasks t ON t.id = i.task_id WHERE i.status = 'rejected'
GROUP BY t.run_id, i.reject_rule, i.reject_rule_version
UNION ALL
SELECT p.run_id, 'parse' AS level, p.stage AS rule, NULL AS rule_version, COUNT(*) AS rejected
FROM parse_failures p
GROUP BY p.run_id, p.stage
""",
    "v_dataset_lineage": """
CREATE VIEW v_dataset_lineage AS
SELECT d.name AS dataset, dv.version, dv.content_hash, di.split, di.task_id, di.instance_id,
       t.origin, t.run_id, t.seed_set_id, t.instruction,
       t.generation_id, g.backend, g.model_name, g.model_hash, g.engine_version,
       g.template_name, g.template_version, g.template_sha256, g.prompt_sha256, g.seed,
       t.instances_generation_id, gi.template_name AS instances_template,
       gi.template_version AS instances_template_version
FROM dataset_items di
JOIN dataset_versions dv ON dv.id = di.dataset_version_id
JOIN datasets d ON d.id = dv.dataset_id
JOIN tasks t ON t.id = di.task_id
LEFT JOIN generations g ON g.id = t.generation_id
LEFT JOIN generations gi ON gi.id = t.instances_generation_id
""",
}


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_prefix"), ["prefix"], unique=False)

    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "eval_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_eval_sets_name")),
    )
    op.create_table(
        "seed_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_format", sa.String(length=20), nullable=False),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seed_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_seed_sets_name")),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_versions_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint(
            "dataset_id", "version", name=op.f("uq_dataset_versions_dataset_id_version")
        ),
    )
    op.create_table(
        "eval_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("eval_set_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column(
            "inputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "outputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["eval_set_id"], ["eval_sets.id"], name=op.f("fk_eval_items_eval_set_id_eval_sets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_items")),
    )
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_eval_items_eval_set_id"), ["eval_set_id"], unique=False
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_idempotency_keys_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "api_key_id", "route", "key", name=op.f("uq_idempotency_keys_api_key_id_route_key")
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("seed_set_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.String(length=50), nullable=False),
        sa.Column("target_tasks", sa.Integer(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generated_count", sa.Integer(), nullable=False),
        sa.Column("accepted_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("parse_failure_count", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("inference_seconds", sa.Float(), nullable=False),
        sa.Column("wall_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["seed_set_id"], ["seed_sets.id"], name=op.f("fk_runs_seed_set_id_seed_sets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_seed_set_id"), ["seed_set_id"], unique=False)
        batch_op.create_index("ix_runs_status_lease", ["status", "lease_expires_at"], unique=False)

    op.create_table(
        "generations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("backend", sa.String(length=50), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("model_hash", sa.String(length=100), nullable=False),
        sa.Column("engine", sa.String(length=50), nullable=False),
        sa.Column("engine_version", sa.String(length=50), nullable=False),
        sa.Column("template_name", sa.String(length=100), nullable=False),
        sa.Column("template_version", sa.String(length=20), nullable=False),
        sa.Column("template_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=False),
        sa.Column("chat_wrapped", sa.Boolean(), nullable=False),
        sa.Column(
            "few_shot_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "sampling",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("completion", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(length=20), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column(
            "retry_log",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_generations_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generations_run_id"), ["run_id"], unique=False)

    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    with op.batch_alter_table("run_events", schema=None) as batch_op:
        batch_op.create_index("ix_run_events_run_id_id", ["run_id", "id"], unique=False)

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("base_model_hash", sa.String(length=100), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_training_runs_dataset_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_runs_dataset_version_id"), ["dataset_version_id"], unique=False
        )

    op.create_table(
        "parse_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_parse_failures_generation_id_generations"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_parse_failures_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parse_failures")),
    )
    with op.batch_alter_table("parse_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_parse_failures_generation_id"), ["generation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_parse_failures_run_id"), ["run_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("seed_set_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("generation_id", sa.String(length=32), nullable=True),
        sa.Column("classification_generation_id", sa.String(length=32), nullable=True),
        sa.Column("instances_generation_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("is_classification", sa.Boolean(), nullable=True),
        sa.Column(
            "turns",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("expected_refusal", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reject_rule", sa.String(length=50), nullable=True),
        sa.Column("reject_rule_version", sa.String(length=20), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("nearest_task_id", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("minhash", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["classification_generation_id"],
            ["generations.id"],
            name=op.f("fk_tasks_classification_generation_id_generations"),
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"], ["generations.id"], name=op.f("fk_tasks_generation_id_generations")
        ),
        sa.ForeignKeyConstraint(
            ["instances_generation_id"],
            ["generations.id"],
            name=op.f("fk_tasks_instances_generation_id_generations"),
        ),
        sa.ForeignKeyConstraint(
            ["nearest_task_id"], ["tasks.id"], name=op.f("fk_tasks_nearest_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["seed_set_id"], ["seed_sets.id"], name=op.f("fk_tasks_seed_set_id_seed_sets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_generation_id"), ["generation_id"], unique=False)
        batch_op.create_index("ix_tasks_reject_rule", ["reject_rule"], unique=False)
        batch_op.create_index("ix_tasks_run_status", ["run_id", "status"], unique=False)
        batch_op.create_index("ix_tasks_seed_set_origin", ["seed_set_id", "origin"], unique=False)

    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reject_rule", sa.String(length=50), nullable=True),
        sa.Column("reject_rule_version", sa.String(length=20), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("generation_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_instances_generation_id_generations"),
        ),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_instances_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint("task_id", "idx", name=op.f("uq_instances_task_id_idx")),
    )
    op.create_table(
        "dataset_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("split", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_items_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_dataset_items_instance_id_instances")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_dataset_items_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_items")),
    )
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_items_dataset_version_id"), ["dataset_version_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dataset_items_task_id"), ["task_id"], unique=False)

    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("scorer", sa.String(length=50), nullable=False),
        sa.Column("scorer_version", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_scores_instance_id_instances")
        ),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_scores_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scores_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scores_task_id"), ["task_id"], unique=False)

    for sql in ALL_VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in ALL_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")

    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scores_task_id"))
        batch_op.drop_index(batch_op.f("ix_scores_instance_id"))

    op.drop_table("scores")
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_items_task_id"))
        batch_op.drop_index(batch_op.f("ix_dataset_items_dataset_version_id"))

    op.drop_table("dataset_items")
    op.drop_table("instances")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_seed_set_origin")
        batch_op.drop_index("ix_tasks_run_status")
        batch_op.drop_index("ix_tasks_reject_rule")
        batch_op.drop_index(batch_op.f("ix_tasks_generation_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("parse_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parse_failures_run_id"))
        batch_op.drop_index(batch_op.f("ix_parse_failures_generation_id"))

    op.drop_table("parse_failures")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_runs_dataset_version_id"))

    op.drop_table("training_runs")
    with op.batch_alter_table("run_events", schema=None) as batch_op:
        batch_op.drop_index("ix_run_events_run_id_id")

    op.drop_table("run_events")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generations_run_id"))

    op.drop_table("generations")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_lease")
        batch_op.drop_index(batch_op.f("ix_runs_seed_set_id"))

    op.drop_table("runs")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("eval_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_items_eval_set_id"))

    op.drop_table("eval_items")
    op.drop_table("dataset_versions")
    op.drop_table("seed_sets")
    op.drop_table("eval_sets")
    op.drop_table("datasets")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_prefix"))

    op.drop_table("api_keys")
