"""`instructforge run`: create a run and work it in this process with a rich progress bar."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service.errors import InvalidInput
from service.runs.config import RunConfig, check_backend, from_flat_layout
from service.runs.pipeline import IterationOutcome
from service.runs.worker import Worker
from service.settings import Settings
from service.statuses import RunStatus
from service.storage.db import Database
from service.storage.models import Run
from service.storage.runs import claim_run, create_run, get_run, recent_events
from service.storage.seeds import get_seed_set


def run_progress(console: Console) -> Progress:
    """The run progress bar: accepted of target, a status line, elapsed time."""
    return Progress(
        TextColumn("[bold]run {task.fields[run]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    )


def run_in_foreground(
    settings: Settings,
    console: Console,
    *,
    seed_set: str,
    target: int,
    backend: str,
    model: str,
    prompts: int | None,
    seed: int,
    config_file: Path | None,
) -> int:
    """Returns the run id; the run ends completed, failed or (on Ctrl-C) queued for a worker.

    The config file's values win over ``backend``, ``model`` and ``seed``; ``prompts`` (when
    given), ``seed_set`` and ``target`` win over the file's.
    """
    try:
        base = from_flat_layout(json.loads(config_file.read_text())) if config_file else {}
        data = {"backend": backend, "model": model, "seed": seed, **base}
        data |= {"seed_set": seed_set, "target_tasks": target}
        if prompts is not None:
            data["bootstrap"] = {**data.get("bootstrap", {}), "prompts_per_iteration": prompts}
        config = RunConfig.model_validate(data)
    except ValueError as exc:
        raise InvalidInput(f"run config: {exc}") from None
    check_backend(config, settings)
    database = Database(settings.database_url)
    worker = Worker(settings=settings, database=database)
    try:
        with database.transaction() as session:
            sid = get_seed_set(session, name=seed_set).id
            run_id = create_run(
                session,
                seed_set_id=sid,
                config=config.model_dump(mode="json"),
                config_hash=config.config_hash(),
                policy_version=config.policy_version,
                target_tasks=target,
            ).id
        console.print(f"run {run_id}: {backend} / {model}, target {target} accepted tasks")
        with run_progress(console) as bar:
            task = bar.add_task("run", total=target, run=run_id, info="starting the model")

            def show(run: Run, outcome: IterationOutcome) -> None:
                info = (
                    f"iter {run.iteration}  generated {run.generated_count}  "
                    f"rejected {run.rejected_count}  parse failures {run.parse_failure_count}"
                )
                bar.update(task, completed=min(run.accepted_count, target), info=info)

            worker.on_iteration = show
            worker.install_signal_handlers()
            with database.transaction() as session:
                claimed = claim_run(
                    session, owner=worker.owner, lease_seconds=settings.lease_seconds, run_id=run_id
                )
            if claimed is None:
                raise InvalidInput(f"run {run_id} was claimed by another worker first")
            worker.work(run_id)
        with database.sessions() as session:
            run = get_run(session, run_id)
            events = recent_events(session, run_id, limit=1)
            console.print(
                f"run {run_id} {run.status}: {run.accepted_count} accepted, "
                f"{run.rejected_count} rejected, {run.parse_failure_count} parse failures"
                + (f"; error: {run.error}" if run.error else "")
            )
            if run.status == RunStatus.QUEUED and events:
                # Handed back (an outage, or a stop signal): say why, and who takes it next.
                console.print(
                    f"  {events[0].message}\n  it waits in the queue: a worker "
                    f"(`instructforge worker`) resumes it"
                )
        return run_id
    finally:
        worker.close()
        database.dispose()
