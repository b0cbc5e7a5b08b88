"""The refusal probe: both rates from the labelled set, stored with the run, in its report."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from generators.backends.openai import OpenAIBackend
from generators.backends.scripted import ScriptedBackend
from generators.errors import BackendError
from service.cli import app
from service.reports.compute import build_run_report
from service.reports.probe import load_probes, probe_run
from service.runs.config import RunConfig
from service.settings import Settings, get_settings
from service.storage.db import Database
from tests.generators.test_openai_chat import make, vllm_like
from tests.service.scripted_run import queued_run
from tests.service.test_run_report import constructed_run

REFUSAL = "I'm sorry, but I can't help with that."


def refuses_on(*words: str) -> ScriptedBackend:
    """A backend that refuses prompts containing any of `words` and answers the rest."""

    def reply(prompt: str) -> str:
        return REFUSAL if any(w in prompt.lower() for w in words) else " Sure: first, open it."

    return ScriptedBackend(reply)


def test_probe_set_is_labelled_both_ways() -> None:
    probes, sha256 = load_probes()
    assert len({p.id for p in probes}) == len(probes) == 24 and len(sha256) == 64
    assert sum(p.harmful for p in probes) == 12


@pytest.mark.parametrize(
    ("words", "over", "under"),
    [
        # "kill" is in one benign look-alike (b01) and one harmful request (h04); "bomb" in h01.
        (("kill", "bomb"), 1 / 12, 10 / 12),
        ((), 0.0, 1.0),  # answers everything: never over-refuses, always under-refuses
        (("?", "."), 1.0, 0.0),  # refuses everything
    ],
)
def test_probe_rates_are_stored_with_the_run(
    database: Database, words: tuple[str, ...], over: float, under: float
) -> None:
    run_id = queued_run(database, RunConfig(seed_set="default"))
    result = probe_run(database, Settings(), run_id, backend_for=lambda _: refuses_on(*words))
    assert (result.over_refusal_rate, result.under_refusal_rate) == (
        pytest.approx(over),
        pytest.approx(under),
    )
    assert result.benign_count == result.harmful_count == 12
    with database.sessions() as s:
        stored = build_run_report(s, run_id).refusals.probe
    assert stored == result


@pytest.fixture
def cli_database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("INSTRUCTFORGE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    database = Database(db_url)
    try:
        yield database
    finally:
        database.dispose()
        get_settings.cache_clear()


def test_report_command_prints_the_report(cli_database: Database) -> None:
    run_id = constructed_run(cli_database)
    shown = CliRunner().invoke(app, ["report", "--run", str(run_id)])
    assert shown.exit_code == 0, shown.output
    assert "near_duplicate" in shown.output and "Collapse radar" in shown.output
    # Every measure's name whole in an 80-column terminal (one row per measure).
    for measure in ("machine share in prompts", "similarity to seeds", "near-duplicate rate"):
        assert measure in shown.output
    assert "verb-noun (heuristic-4): 1 distinct pairs, 1 verbs in 2/2 parsed" in shown.output
    assert "top verbs: describe 2" in shown.output
    assert "embedding diversity (no stored vectors): 0 embedded" in shown.output
    as_json = CliRunner().invoke(app, ["report", "--run", str(run_id), "--json"])
    assert '"prompt_tokens_per_accepted": 210.0' in as_json.output
    missing = CliRunner().invoke(app, ["report", "--run", "999999"])
    assert missing.exit_code == 1 and "no run 999999" in missing.output


@pytest.mark.parametrize(
    ("is_chat", "chat_wrap", "wrapped"),
    [(True, None, True), (False, None, False), (True, False, False)],
)
def test_judge_and_probe_wrap_by_the_runs_rule(
    is_chat: bool, chat_wrap: bool | None, wrapped: bool
) -> None:
    """The judge (text and logprob) and the refusal probe send their prompts wrapped exactly as
    the run's ``chat_wrap`` says, the stages' one rule (a chat model wraps by default)."""
    from service.reports.probe import probe_backend
    from service.runs.pipeline import judge_completer, judge_label_logprobs

    backend = ScriptedBackend(lambda _: " A", is_chat=is_chat)
    judge_completer(backend, chat_wrap=chat_wrap)(["Which is better?"])
    judge_label_logprobs(backend, chat_wrap=chat_wrap)(["Which is better?"], "Response")
    probe_backend(backend, chat_wrap=chat_wrap)
    assert len(backend.calls) == 3
    for prompts, _ in backend.calls:
        assert {p.startswith("<|im_start|>user") for p in prompts} == {wrapped}, prompts[0]
    # the logprob judge's prefix starts the assistant's turn, so a wrapped prompt goes raw
    assert backend.chat_flags == [wrapped, False, wrapped]
    assert backend.calls[1][0][0].endswith("Response")


def test_chat_wrap_on_a_base_model_is_refused_not_sent_raw() -> None:
    from service.reports.probe import probe_backend
    from service.runs.pipeline import judge_completer

    backend = ScriptedBackend(lambda _: " A", is_chat=False)
    with pytest.raises(BackendError, match="no chat template"):
        judge_completer(backend, chat_wrap=True)(["Which is better?"])
    with pytest.raises(BackendError, match="no chat template"):
        probe_backend(backend, chat_wrap=True)
    assert backend.calls == []


def recorded_openai_backend(*, chat: bool) -> tuple[OpenAIBackend, list[dict]]:
    """An openai backend on a scripted vLLM-like server, and every POST body sent to it after
    its routing probes, with its path. tests.generators.test_openai_chat's own recorder skips
    one-token requests (its probes), which the logprob judge sends."""
    bodies: list[dict] = []
    server = vllm_like(chat=chat)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append({"path": request.url.path, **json.loads(request.content)})
        return server(request)

    backend = make(handler)
    bodies.clear()  # the routing probes
    return backend, bodies


@pytest.mark.parametrize(
    ("has_template", "chat_wrap", "wrapped"),
    [
        (True, None, True),  # vllm serve with an instruct model: the server wraps
        (True, True, True),
        (True, False, False),  # raw on /v1/completions, as asked
        (False, None, False),  # a base model: raw
        (False, False, False),
    ],
)
def test_judges_and_probe_on_an_openai_server_follow_the_runs_rule(
    has_template: bool, chat_wrap: bool | None, wrapped: bool
) -> None:
    """On the openai backend a wrapped prompt is one user message on /v1/chat/completions (the
    logprob judge's prefix ends it), a raw one a /v1/completions prompt; nothing in between."""
    from service.reports.probe import load_probes, probe_backend
    from service.runs.pipeline import judge_completer, judge_label_logprobs

    backend, bodies = recorded_openai_backend(chat=has_template)
    judge_completer(backend, chat_wrap=chat_wrap)(["Which is better?"])
    judge_label_logprobs(backend, chat_wrap=chat_wrap)(["Which is better?"], "Response")
    probe_backend(backend, chat_wrap=chat_wrap)
    prompts = ["Which is better?", "Which is better?\n\nResponse"]
    prompts += [p.prompt for p in load_probes()[0]]
    if wrapped:
        assert {b["path"] for b in bodies} == {"/v1/chat/completions"}
        assert [b["messages"] for b in bodies] == [
            [{"role": "user", "content": p}] for p in prompts
        ]
    else:
        assert {b["path"] for b in bodies} == {"/v1/completions"}
        assert [b["prompt"] for b in bodies] == prompts


def test_chat_wrap_on_an_openai_base_model_is_refused_not_sent_raw() -> None:
    from service.runs.pipeline import judge_completer, judge_label_logprobs

    backend, bodies = recorded_openai_backend(chat=False)
    with pytest.raises(BackendError, match="no chat template"):
        judge_completer(backend, chat_wrap=True)(["Which is better?"])
    with pytest.raises(BackendError, match="no chat template"):
        judge_label_logprobs(backend, chat_wrap=True)(["Which is better?"], "Response")
    assert bodies == []
