"""The web viewer's pages under /ui: server-rendered Jinja2, read through the REST API's readers.

Every page reads with the functions the /v1 routes use (`service.api.reads` on the asyncio
engine, `service.storage` on a session): no second query layer. Errors render as an HTML page
with the status the API would give; a missing or expired session redirects to the login.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from pydantic import ValidationError

from service.api import reads
from service.api.auth import KeyVerifier, Principal
from service.api.deps import (
    Caller,
    DatabaseDep,
    ReadEngine,
    RunId,
    SettingsDep,
    TaskId,
    TrainingRunId,
    read,
)
from service.api.routes import datasets as dataset_routes
from service.api.schemas import RunQuery, TaskQuery
from service.errors import Forbidden, InvalidInput, ServiceError
from service.export import diff_versions, get_version, list_datasets, list_versions, version_info
from service.reports.compute import build_run_report
from service.statuses import TERMINAL_RUN_STATUSES
from service.storage import runs as run_store
from service.storage import tasks as task_store
from service.storage.db import Session as OrmSession
from service.storage.db import read_async
from service.storage.keys import end_viewer_sessions, has_scope, hash_key
from service.storage.training_runs import get_training_run, list_training_runs
from service.viewer import session as sessions
from service.viewer.assets import asset
from service.viewer.highlight import shared_words
from trainer.outputs import CURVE_CSV

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["asset"] = asset
# Cards are our own Markdown, but they quote names users wrote, and a version exported before
# `card.code_span` may hold Markdown from them: raw HTML is off, and so are images and links
# (a card has none of its own; a remote image would load from wherever the name points).
_markdown = (
    MarkdownIt("commonmark", {"html": False}).enable("table").disable(["image", "link", "autolink"])
)
ACTIONS = ("pause", "resume", "cancel")
TASK_FILTERS = (
    "run_id",
    "seed_set_id",
    "status",
    "reject_rule",
    "origin",
    "type",
    "scorer",
    "min_score",
    "max_score",
    "q",
)


class LoginRequired(Exception):
    """No valid session: the route answers with a redirect to the login page."""


# Every page may run only the app's own scripts and load only its own assets: stored text that
# slips past escaping still runs nothing and fetches nothing from elsewhere, and no other site
# may frame the pages (their buttons act). Inline style attributes (bar widths) are allowed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class ViewerRoute(APIRoute):
    """A route whose errors become HTML pages (the API's handlers answer JSON), every answer
    with `SECURITY_HEADERS`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response = await answer(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", 303)
            except ServiceError as exc:
                return error_page(request, exc.status_code, exc.code, str(exc))
            except (RequestValidationError, ValidationError) as exc:
                errors = exc.errors()
                message = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'] if p not in ('query', 'path', 'body'))}: "
                    f"{e['msg']}"
                    for e in errors
                )
                return error_page(request, 422, "invalid_input", message)

        return handle


router = APIRouter(prefix="/ui", route_class=ViewerRoute, include_in_schema=False)


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "code": code, "message": message, "viewer": None},
        status_code=status,
    )


def _secret(request: Request) -> bytes:
    secret: bytes | None = getattr(request.app.state, "viewer_secret", None)
    if secret is None:
        settings = request.app.state.settings
        secret = sessions.load_secret(settings.viewer_secret, settings.data_dir)
        request.app.state.viewer_secret = secret
    return secret


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the key behind the session, its CSRF token, whether it may act."""

    principal: Principal
    csrf: str
    key_hash: str

    @property
    def can_act(self) -> bool:
        return has_scope(self.principal.scopes, "write")


async def current_viewer(request: Request, engine: ReadEngine) -> Viewer:
    """The session's viewer. Raises LoginRequired without a valid session or live key."""
    session = sessions.read(_secret(request), request.cookies.get(sessions.COOKIE))
    if session is None:
        raise LoginRequired
    verifier: KeyVerifier = request.app.state.keys
    principal = await verifier.verify_digest(engine, session.key_hash)
    if principal is None or session.ended_by(principal.viewer_logout_at):
        raise LoginRequired
    return Viewer(principal, session.csrf, session.key_hash)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def render(request: Request, template: str, viewer: Viewer | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"viewer": viewer, **context})


def _safe_next(target: str | None) -> str:
    # Only our own pages: never an open redirect to another site.
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui/runs"


# --- login -------------------------------------------------------------------------------


def _document(body: bytes) -> Any:
    """A REST read's rendered JSON as the templates use it: timestamps (keys ending in `_at`)
    back as datetimes. The viewer reads through the same functions as the REST API."""
    return _with_datetimes(orjson.loads(body))


def _with_datetimes(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: datetime.fromisoformat(v)
            if k.endswith("_at") and isinstance(v, str)
            else _with_datetimes(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_with_datetimes(v) for v in value]
    return value


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", 303)


def _login_page(
    request: Request, next: str | None, error: str | None, status: int = 200
) -> HTMLResponse:
    """The login form with its CSRF token; sets the pre-session cookie it is bound to (a
    browser that has one keeps it, so two open tabs both stay valid)."""
    nonce = request.cookies.get(sessions.LOGIN_COOKIE) or sessions.login_nonce()
    token = sessions.login_token(_secret(request), nonce)
    page = render(request, "login.html", None, next=_safe_next(next), error=error, csrf=token)
    page.status_code = status
    page.set_cookie(
        sessions.LOGIN_COOKIE,
        nonce,
        max_age=sessions.LOGIN_LIFETIME_S,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, next, None)


@router.post("/login")
async def login(
    request: Request,
    engine: ReadEngine,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Exchange an API key for a session cookie (HttpOnly, SameSite=Strict). The form must
    carry the token of this browser's login cookie (403 otherwise: login CSRF)."""
    nonce = request.cookies.get(sessions.LOGIN_COOKIE)
    if not sessions.login_token_matches(_secret(request), nonce, csrf):
        return _login_page(
            request,
            next,
            "This login form expired or came from another page: please log in again.",
            403,
        )
    verifier: KeyVerifier = request.app.state.keys
    principal = await verifier.verify(engine, key.strip()) if key.strip() else None
    if principal is None:
        return _login_page(request, next, "Unknown or revoked key.", 401)
    lifetime = int(settings.viewer_session_hours * 3600)
    cookie = sessions.issue(_secret(request), hash_key(key.strip()), lifetime_s=lifetime)
    response = RedirectResponse(_safe_next(next), 303)
    response.delete_cookie(
        sessions.LOGIN_COOKIE, path="/ui/login", httponly=True, samesite="strict"
    )
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=lifetime,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _check_form(viewer: Viewer, csrf: str | None, *, write: bool) -> None:
    if not sessions.csrf_matches(sessions.Session("", viewer.csrf), csrf):
        raise Forbidden("the form's CSRF token is missing or not this session's: reload the page")
    if write and not viewer.can_act:
        raise Forbidden("this key lacks the 'write' scope: it can look but not act")


@router.post("/logout")
async def logout(
    request: Request,
    viewer: ViewerDep,
    database: DatabaseDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """End the session: every session of this key issued until now is over (a copy of the
    cookie kept elsewhere too), and the browser drops its cookie."""
    _check_form(viewer, csrf, write=False)

    def end() -> None:
        with database.transaction() as session:
            end_viewer_sessions(session, viewer.principal.id)

    await anyio.to_thread.run_sync(end)
    verifier: KeyVerifier = request.app.state.keys
    verifier.forget(viewer.key_hash)
    response = RedirectResponse("/ui/login", 303)
    response.delete_cookie(sessions.COOKIE, path="/ui")
    return response


# --- runs --------------------------------------------------------------------------------


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, engine: ReadEngine, viewer: ViewerDep) -> HTMLResponse:
    params = request.query_params
    query = RunQuery.model_validate(
        {k: v for k, v in params.items() if k in ("status", "cursor", "limit") and v != ""}
    )
    page = _document(await reads.runs(engine, query))
    live = any(r["status"] not in TERMINAL_RUN_STATUSES for r in page["items"])
    name = "_runs_rows.html" if params.get("fragment") == "true" else "runs.html"
    return render(request, name, viewer, page=page, query=query, live=live)


async def _run_live(engine: Any, database: Any, run_id: int) -> dict[str, Any]:
    run = _document(await reads.run(engine, run_id))
    events = await read(database, lambda s: run_store.recent_events(s, run_id, 15))
    return {
        "run": run,
        "events": events,
        "actions": run_store.actions_for(run["kind"], run["status"]),
        "live": run["status"] not in TERMINAL_RUN_STATUSES,
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request, run_id: RunId, engine: ReadEngine, database: DatabaseDep, viewer: ViewerDep
) -> HTMLResponse:
    live = await _run_live(engine, database, run_id)
    report = await _report(database, run_id)
    return render(request, "run.html", viewer, **live, **report)


async def _report(database: Any, run_id: int) -> dict[str, Any]:
    """The run's quality report and its charts, as the report section renders them."""
    report = (await read(database, lambda s: build_run_report(s, run_id))).model_dump(
        mode="json", by_alias=True
    )
    return {"report": report, "charts": report_charts(report)}


_RADAR = (
    "machine_share_in_prompts",
    "similarity_to_seeds",
    "similarity_to_previous",
    "near_duplicate_rate",
    "novel_bigram_share",
)


def report_charts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The run report's per-iteration series as line charts (static/app.js draws them)."""
    iterations = report["iterations"]
    x = [it["iteration"] for it in iterations]

    def series(group: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [
            {"label": n.replace("_", " "), "values": [it[group][n] for it in iterations]}
            for n in names
        ]

    return [
        {
            "id": "yield",
            "title": "Yield per iteration",
            "x_label": "iteration",
            "x": x,
            "series": series("yield", ("candidates", "accepted", "rejected")),
        },
        {
            "id": "diversity",
            "title": "Diversity per iteration",
            "x_label": "iteration",
            "x": x,
            "series": series("diversity", ("distinct_1", "distinct_2")),
        },
        {
            "id": "collapse",
            "title": "Collapse radar per iteration",
            "x_label": "iteration",
            "x": x,
            "series": series("collapse", _RADAR),
        },
    ]


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
async def run_live(
    request: Request, run_id: RunId, engine: ReadEngine, database: DatabaseDep, viewer: ViewerDep
) -> HTMLResponse:
    """The run page's progress, status, actions and events: polled while the run is live."""
    return render(request, "_run_live.html", viewer, **await _run_live(engine, database, run_id))


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
async def run_report(
    request: Request, run_id: RunId, engine: ReadEngine, database: DatabaseDep, viewer: ViewerDep
) -> HTMLResponse:
    """The run page's quality report: polled while the run is live (less often than the
    progress: it reads every task of the run)."""
    run = _document(await reads.run(engine, run_id))
    live = run["status"] not in TERMINAL_RUN_STATUSES
    report = await _report(database, run_id)
    return render(request, "_run_report.html", viewer, run=run, live=live, **report)


@router.post("/runs/{run_id}/{action}")
async def run_action(
    run_id: RunId,
    action: str,
    database: DatabaseDep,
    viewer: ViewerDep,
    csrf: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Pause, resume or cancel: a write key and this session's CSRF token, else 403."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    _check_form(viewer, csrf, write=True)

    def act() -> None:
        with database.transaction() as session:
            run_store.change_status(session, run_id, action)

    await anyio.to_thread.run_sync(act)
    return RedirectResponse(f"/ui/runs/{run_id}", 303)


# --- tasks -------------------------------------------------------------------------------


def _task_query(params: dict[str, str]) -> TaskQuery:
    """The form's filters as the API's TaskQuery (empty fields are no filter).

    Raises:
        ValidationError: a value the API would refuse too.
    """
    values: dict[str, Any] = {k: v for k, v in params.items() if v != ""}
    kind = values.pop("type", None)
    if kind is not None:
        values["is_classification"] = {"classification": True, "generation": False}.get(kind)
        if values["is_classification"] is None:
            raise InvalidInput("type: classification or generation")
    return TaskQuery.model_validate(values)


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, engine: ReadEngine, viewer: ViewerDep) -> HTMLResponse:
    params = {
        k: v for k, v in request.query_params.items() if k in (*TASK_FILTERS, "cursor", "limit")
    }
    query = _task_query(params)
    page = _document(await reads.tasks(engine, query))
    filters = {k: params[k] for k in TASK_FILTERS if params.get(k)}
    next_url = (
        f"/ui/tasks?{urlencode({**filters, 'cursor': page['next_cursor']})}"
        if page["next_cursor"]
        else None
    )
    return render(
        request,
        "tasks.html",
        viewer,
        page=page,
        filters=filters,
        next_url=next_url,
        first_url=f"/ui/tasks?{urlencode(filters)}" if query.cursor else None,
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: TaskId, engine: ReadEngine, viewer: ViewerDep
) -> HTMLResponse:
    task = _document(await reads.task(engine, task_id))
    overlap = None
    if task["nearest"] is not None:
        # CPU-bound (an LCS table): off the event loop, so other requests are not held up.
        overlap = await anyio.to_thread.run_sync(
            shared_words, task["instruction"], task["nearest"]["instruction"]
        )
    calls = [
        (label, task[field])
        for label, field in (
            ("Instruction", "generation"),
            ("Classification", "classification_generation"),
            ("Instances", "instances_generation"),
        )
        if task[field] is not None
    ]
    return render(request, "task.html", viewer, task=task, overlap=overlap, calls=calls)


# --- datasets ----------------------------------------------------------------------------


@router.get("/datasets", response_class=HTMLResponse)
async def datasets_page(request: Request, database: DatabaseDep, viewer: ViewerDep) -> HTMLResponse:
    return render(request, "datasets.html", viewer, datasets=await read(database, list_datasets))


def _card_html(directory: Path) -> tuple[str | None, str]:
    """The version's README.md card as HTML, its YAML front matter apart (shown as text)."""
    path = directory / "README.md"
    if not path.exists():
        return None, ""
    text = path.read_text(encoding="utf-8")
    front = ""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            front, text = text[4:end], text[end + 5 :]
    return front, _markdown.render(text)


@router.get("/datasets/{name}", response_class=HTMLResponse)
async def dataset_page(
    request: Request,
    name: dataset_routes.NAME,
    database: DatabaseDep,
    viewer: ViewerDep,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> HTMLResponse:
    def query(session: OrmSession) -> dict[str, Any]:
        versions = [version_info(row, name) for row in list_versions(session, name)]
        ready = [v.version for v in versions if v.status == "ready"]
        shown = version if version is not None else (ready[-1] if ready else None)
        manifest = None
        front, card = None, ""
        if shown is not None:
            row = get_version(session, dataset=name, version=shown)
            if row.status == "ready":
                directory, manifest = dataset_routes._ready_dir(session, name, shown)
                front, card = _card_html(directory)
        return {
            "versions": versions,
            "shown": shown,
            "manifest": manifest,
            "front_matter": front,
            "card": card,
        }

    context = await read(database, query)
    return render(request, "dataset.html", viewer, name=name, **context)


@router.get("/datasets/{name}/diff", response_class=HTMLResponse)
async def diff_page(
    request: Request,
    name: dataset_routes.NAME,
    database: DatabaseDep,
    engine: ReadEngine,
    viewer: ViewerDep,
    old: Annotated[int, Query(alias="from", ge=1, le=2_147_483_647)],
    new: Annotated[int, Query(alias="to", ge=1, le=2_147_483_647)],
) -> HTMLResponse:
    diff = await read(
        database, lambda s: diff_versions(s, dataset=name, old=old, new=new, limit=200)
    )
    ids = [*diff.added, *diff.removed, *diff.changed]
    rows = await read_async(
        engine, lambda c: task_store.read_tasks_by_id(c, ids, columns=reads.TASK_COLUMNS)
    )
    tasks = {r["id"]: r for r in rows}
    return render(request, "diff.html", viewer, name=name, old=old, new=new, diff=diff, tasks=tasks)


@router.get("/datasets/{name}/versions/{version}/files/{filename}")
def download(
    request: Request,
    name: dataset_routes.NAME,
    version: dataset_routes.VERSION,
    filename: dataset_routes.FILENAME,
    database: DatabaseDep,
    engine: ReadEngine,
    viewer: ViewerDep,
) -> Response:
    """The REST download (ETag, Range), for a browser holding a session instead of a key."""
    return dataset_routes.download_file(
        name,
        version,
        filename,
        database,
        Caller(viewer.principal, engine),
        if_none_match=request.headers.get("if-none-match"),
        range_header=request.headers.get("range"),
        if_range=request.headers.get("if-range"),
    )


# --- training runs -----------------------------------------------------------------------


@router.get("/training", response_class=HTMLResponse)
async def training_page(request: Request, database: DatabaseDep, viewer: ViewerDep) -> HTMLResponse:
    return render(request, "training.html", viewer, runs=await read(database, list_training_runs))


def _curve(output_dir: str) -> list[tuple[int, float]]:
    """The validation curve the trainer wrote (trainer.outputs.write_curve); [] if absent."""
    path = Path(output_dir) / CURVE_CSV
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [(int(r["step"]), float(r["val_loss"])) for r in csv.DictReader(handle)]


@router.get("/training/{run_id}", response_class=HTMLResponse)
async def training_run_page(
    request: Request, run_id: TrainingRunId, database: DatabaseDep, viewer: ViewerDep
) -> HTMLResponse:
    row = await read(database, lambda s: get_training_run(s, run_id))
    curve = await anyio.to_thread.run_sync(_curve, row.run.output_dir)
    chart = {
        "title": "validation loss",
        "x_label": "optimizer step",
        "x": [s for s, _ in curve],
        "series": [{"label": "validation loss", "values": [v for _, v in curve]}],
    }
    return render(request, "training_run.html", viewer, row=row, curve=curve, chart=chart)


# --- anything else under /ui ---------------------------------------------------------------


@router.get("/{unknown:path}", response_class=HTMLResponse)
async def not_found(request: Request, unknown: str) -> HTMLResponse:
    """An address no page has (a mistyped link, an id with a slash in it): the HTML 404 page,
    not the REST API's JSON. Registered last, so every page above matches first."""
    return error_page(request, 404, "not_found", f"no page at /ui/{unknown}")
