"""The openai backend on /v1/chat/completions, and how ``endpoint="auto"`` chooses.

Against httpx.MockTransport servers that answer like vLLM; the real server is in
test_openai_fleet_vllm.py and test_real_backends.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import httpx
import pytest

from bench.servers import scripted_servers
from generators.backends.openai import OpenAIBackend
from generators.backends.openai_endpoints import continuation_messages
from generators.bootstrap import BootstrapConfig, Iteration, is_few_shot
from generators.errors import BackendError
from generators.types import PoolTask, SamplingParams, Stage

SAMPLING = SamplingParams(
    temperature=0.7, top_p=0.5, presence_penalty=2.0, max_tokens=16, stop=("\n\n",), seed=10
)
CARD = {"id": "served", "object": "model", "root": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def chat_ok(text: str = "A task.") -> httpx.Response:
    message = {"role": "assistant", "content": text}
    return httpx.Response(
        200,
        json={
            "choices": [{"message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2},
        },
    )


def vllm_like(
    *,
    chat: bool,
    completions: bool = True,
    cards: list[dict[str, Any]] | None = None,
    bodies: list[dict] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A server for model "served": chat answered only when ``chat`` (a chat template),
    completions only when ``completions`` (a chat-only provider answers 404)."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [CARD] if cards is None else cards})
        if path == "/version":
            return httpx.Response(200, json={"version": "0.32.0"})
        body = json.loads(request.content)
        if path == "/v1/chat/completions":
            if not chat:
                return httpx.Response(400, json={"error": {"message": "no chat template"}})
            if bodies is not None and body.get("max_tokens") != 1:  # the probe is not kept
                bodies.append(body)
            return chat_ok(f"re: {body['messages'][0]['content']}")
        if not completions:
            return httpx.Response(404, json={"error": {"message": "no such route"}})
        if bodies is not None and body.get("max_tokens") != 1:
            bodies.append(body)
        return httpx.Response(
            200,
            json={
                "choices": [{"text": f"re: {body['prompt']}", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
            },
        )

    return handler


def make(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> OpenAIBackend:
    return OpenAIBackend(
        "http://127.0.0.1:8000/v1",
        model="served",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
        **options,
    )


@pytest.mark.parametrize(
    ("chat", "completions", "chat_route", "raw_route"),
    [
        (True, True, "chat", "completions"),  # vllm serve with an instruct model
        (False, True, "completions", "completions"),  # vllm serve with a base model
        (True, False, "chat", "chat"),  # a chat-only provider: raw text as continuations
        (False, False, "completions", "completions"),  # answers neither: errors show per call
    ],
)
def test_auto_routes_chat_and_raw_requests_by_what_the_server_answers(
    chat: bool, completions: bool, chat_route: str, raw_route: str
) -> None:
    client = make(vllm_like(chat=chat, completions=completions))
    assert client.routes == {True: chat_route, False: raw_route}
    assert client.model_info.is_chat is chat  # no local tokenizer: only the server can wrap


@pytest.mark.parametrize(("endpoint", "route"), [("chat", "chat"), ("completions", "completions")])
def test_a_forced_endpoint_takes_both_kinds_of_request(endpoint: str, route: str) -> None:
    assert make(vllm_like(chat=True), endpoint=endpoint).routes == {True: route, False: route}


@pytest.mark.parametrize(
    "probe_answer",
    [
        httpx.Response(404),  # a server without the chat API
        httpx.Response(500),
        httpx.Response(200, json={"choices": [{"text": "x", "finish_reason": "stop"}]}),
    ],
)
def test_auto_falls_back_to_completions_when_the_chat_probe_is_not_a_chat_answer(
    probe_answer: httpx.Response,
) -> None:
    base = vllm_like(chat=True)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            return probe_answer
        return base(request)

    assert make(handler).routes == {True: "completions", False: "completions"}


def test_chat_requests_carry_messages_and_each_sampling_parameter() -> None:
    bodies: list[dict] = []
    client = make(vllm_like(chat=True, bodies=bodies), endpoint="chat")
    out = client.generate(["p0", "p1"], SAMPLING, chat=True)
    by_prompt = {b["messages"][0]["content"]: b for b in bodies}
    assert set(by_prompt) == {"p0", "p1"}
    body = by_prompt["p1"]
    assert body["messages"] == [{"role": "user", "content": "p1"}]
    assert body["max_completion_tokens"] == 16 and "max_tokens" not in body
    assert body["seed"] == 11 and body["stop"] == ["\n\n"] and body["presence_penalty"] == 2.0
    assert body["temperature"] == 0.7 and body["top_p"] == 0.5 and body["n"] == 1
    assert [c.text for c in out] == ["re: p0", "re: p1"]
    assert out[1].messages == [{"role": "user", "content": "p1"}]
    assert out[1].endpoint == "chat" and out[1].server == "http://127.0.0.1:8000"
    assert (out[1].prompt_tokens, out[1].completion_tokens) == (9, 2)


def test_completions_requests_send_max_tokens_and_record_the_endpoint() -> None:
    bodies: list[dict] = []
    client = make(vllm_like(chat=True, bodies=bodies), endpoint="completions")
    [completion] = client.generate(["p0"], SAMPLING)
    assert bodies[0]["prompt"] == "p0" and bodies[0]["max_tokens"] == 16
    assert "messages" not in bodies[0] and "max_completion_tokens" not in bodies[0]
    assert completion.endpoint == "completions" and completion.messages is None


def test_provenance_without_a_local_copy_names_the_server_model_and_messages() -> None:
    client = make(vllm_like(chat=True))
    info = client.model_info
    assert (info.name, info.revision, info.path) == ("served", CARD["root"], CARD["root"])
    assert info.engine_version == "0.32.0" and info.model_hash == "unknown"
    assert client.wrap_chat("a prompt") == "a prompt"  # the server applies the template
    config = BootstrapConfig()
    iteration = Iteration(backend=client, config=config, seed=3)
    template = type("T", (), {"name": "evolution", "version": 1, "sha256": "0" * 64})()
    [record] = iteration.call(
        "evolution", [template], ["a prompt"], [["1"]], config.instruction_sampling
    )
    assert record.chat_wrapped is True and record.prompt == "a prompt"
    assert record.messages == [{"role": "user", "content": "a prompt"}]
    assert record.endpoint == "chat" and record.server == "http://127.0.0.1:8000"
    assert record.model.revision == CARD["root"]


STAGES: tuple[Stage, ...] = get_args(Stage)


@pytest.mark.parametrize("chat_wrap", [None, True, False])
@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_goes_where_iteration_wraps_says(stage: Stage, chat_wrap: bool | None) -> None:
    """vllm serve with an instruct model: a wrapped stage on chat, a raw one on completions,
    sent as it is (no template, no messages); one rule, ``Iteration.wraps``."""
    bodies: list[dict] = []
    client = make(vllm_like(chat=True, bodies=bodies))
    config = BootstrapConfig(chat_wrap=chat_wrap)
    iteration = Iteration(backend=client, config=config, seed=3)
    template = type("T", (), {"name": stage, "version": 1, "sha256": "0" * 64})()
    [record] = iteration.call(stage, [template], ["Task 1: x\nTask 2:"], [[]], SAMPLING)
    wrapped = iteration.wraps(stage)
    assert wrapped is (chat_wrap if chat_wrap is not None else not is_few_shot(stage))
    assert record.endpoint == ("chat" if wrapped else "completions")
    assert record.chat_wrapped is wrapped and record.prompt == "Task 1: x\nTask 2:"
    [body] = bodies
    if wrapped:
        assert body["messages"] == [{"role": "user", "content": "Task 1: x\nTask 2:"}]
    else:
        assert body["prompt"] == "Task 1: x\nTask 2:" and record.messages is None
    assert record.completion == "re: Task 1: x\nTask 2:"


@pytest.mark.parametrize("endpoint", ["auto", "chat"])
def test_a_chat_only_provider_gets_raw_prompts_as_continuation_requests(endpoint: str) -> None:
    bodies: list[dict] = []
    client = make(vllm_like(chat=True, completions=False, bodies=bodies), endpoint=endpoint)
    raw = client.generate(["1. a\n2."], SAMPLING)
    chat = client.generate(["hi"], SAMPLING, chat=True)
    assert bodies[0]["messages"] == continuation_messages("1. a\n2.")
    assert bodies[0]["messages"][0]["content"].endswith("\n\n1. a\n2.")
    assert bodies[1]["messages"] == [{"role": "user", "content": "hi"}]
    assert raw[0].messages == continuation_messages("1. a\n2.") and raw[0].endpoint == "chat"
    assert chat[0].messages == [{"role": "user", "content": "hi"}]
    assert [c.finish_reason for c in raw + chat] == ["stop", "stop"]


@pytest.mark.parametrize("revision_key", ["revision", "root"])
def test_the_reported_revision_is_the_servers_own_word(revision_key: str) -> None:
    card = {"id": "served", revision_key: "abc123"}
    assert make(vllm_like(chat=False, cards=[card])).model_info.revision == "abc123"


def test_a_server_that_serves_another_model_is_refused() -> None:
    with pytest.raises(BackendError, match="serves other-model"):
        make(vllm_like(chat=True, cards=[{"id": "other-model"}]))


def test_a_malformed_chat_answer_is_an_error_completion() -> None:
    base = vllm_like(chat=True)

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.method == "POST" else {}
        if request.url.path == "/v1/chat/completions" and body.get("max_tokens") != 1:
            return httpx.Response(200, json={"choices": [{"text": "completions-shaped"}]})
        return base(request)

    [completion] = make(handler).generate(["p"], SAMPLING, chat=True)
    assert completion.finish_reason == "error" and "malformed chat" in completion.retry_log[0]


def test_a_chat_only_http_server_runs_a_whole_iteration_as_continuations(
    seed_pool: list[PoolTask],
) -> None:
    """A real HTTP chat-only provider (bench/scripted_openai.py --chat-only, 404 on
    /v1/completions): the few-shot stages still work, each call recorded as a continuation
    request on chat; an evolution stage goes as a plain user turn."""
    with scripted_servers(1, chat_only=True) as [url]:
        client = OpenAIBackend(url, model="served", max_retries=0)
        try:
            assert client.routes == {True: "chat", False: "chat"}
            config = BootstrapConfig(prompts_per_iteration=2)
            iteration = Iteration(backend=client, config=config, seed=1)
            candidates = iteration.instructions(seed_pool, [])
            iteration.classify(candidates)
            iteration.instances(candidates)
            result = iteration.result(candidates, candidates)
            few_shot = list(result.records)
            template = type("T", (), {"name": "evolution", "version": 1, "sha256": "0" * 64})()
            [evolved] = iteration.call("evolution", [template], ["Rewrite: x"], [[]], SAMPLING)
        finally:
            client.close()
    stages = {r.stage for r in few_shot}
    assert stages == {"instructions", "classification", "instances"}
    assert len(candidates) >= 2 and all(c.instances for c in candidates)
    assert result.parse_failures == []
    for record in few_shot:
        assert (record.endpoint, record.server, record.finish_reason) == ("chat", url, "stop")
        assert record.chat_wrapped is True  # not sent raw: the provider's template was applied
        assert record.messages == continuation_messages(record.prompt)
    assert evolved.messages == [{"role": "user", "content": "Rewrite: x"}]
    assert evolved.endpoint == "chat" and evolved.chat_wrapped is True
