"""What the viewer's tests look at: a run committed through the real iteration code, two dataset
versions exported over REST and a training run record.

The run's replies are scripted (tests/service/scripted_run.py): one iteration gives an accepted
task, its near-duplicate (rejected, pointing at it) and a keyword rejection, with full
provenance. v1 of dataset `demo` holds the seeds alone; v2 adds the run's accepted tasks and
splits the seeds by another salt, so the diff has added and changed tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generators.config import BootstrapConfig
from service.runs.config import RunConfig
from service.storage.iterations import commit_iteration
from service.storage.models import DatasetVersion, Task, TrainingRun
from service.storage.runs import release_lease
from tests.service.api_client import ApiHarness
from tests.service.scripted_run import claimed_run, scripted_pipeline


@dataclass
class Seeded:
    api: ApiHarness
    run_id: int
    accepted_id: int
    duplicate_id: int
    training_id: int


def run_config() -> RunConfig:
    """The configuration of the viewer's run (a test may step it further)."""
    return RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=5
    )


def seed_viewer_data(api: ApiHarness, tmp_path: Path, *, complete: bool = False) -> Seeded:
    """Store the run, versions and training run; `complete` ends the run (else it stays
    running under the lease of owner "me")."""
    config = run_config()
    run_id = claimed_run(api.database, config)
    write = api.headers("write")

    def export(spec: dict[str, object]) -> None:
        made = api.client.post("/v1/datasets/demo/versions?wait=true", json=spec, headers=write)
        assert made.status_code == 201, made.text

    export({"validation_ratio": 0.3})  # v1: the seeds alone (the run has no task yet)
    run, pipeline = scripted_pipeline(api.database, run_id, config)
    outcome = pipeline.step(1)
    with api.database.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
        tasks = s.query(Task).filter(Task.run_id == run_id).order_by(Task.id).all()
        accepted = next(t for t in tasks if t.status == "accepted")
        duplicate = next(t for t in tasks if t.reject_rule == "near_duplicate")
        if complete:
            release_lease(s, run_id=run_id, owner="me", status="completed")
    export({"validation_ratio": 0.3, "split_seed": 1})
    output = tmp_path / "model-out"
    output.mkdir()
    (output / "validation_curve.csv").write_text(
        "step,val_loss\n0,1.449\n10,1.362\n20,1.301\n30,1.275\n"
    )
    with api.database.transaction() as s:
        version = s.query(DatasetVersion).filter(DatasetVersion.version == 2).one()
        row = TrainingRun(
            dataset_version_id=version.id,
            output_dir=str(output),
            base_model="smollm2-135m",
            config={"max_steps": 30, "learning_rate": 5e-5, "batch_size": 4},
            config_hash="c" * 64,
            status="completed",
            metrics={"steps": 30, "initial_val_loss": 1.449, "val_loss": 1.275},
        )
        s.add(row)
        s.flush()
        training_id = row.id
    return Seeded(api, run_id, accepted.id, duplicate.id, training_id)
