"""SQL views for the questions admins ask most. Plain SQL that SQLite and PostgreSQL both run.

A migration copies the text of the views it creates: changing a view here means a new revision.
"""

from __future__ import annotations

RUN_SUMMARY = """
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
"""

REJECTIONS_BY_RULE = """
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
"""

DATASET_LINEAGE = """
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
"""

ALL_VIEWS = {
    "v_run_summary": RUN_SUMMARY,
    "v_rejections_by_rule": REJECTIONS_BY_RULE,
    "v_dataset_lineage": DATASET_LINEAGE,
}
