"""The openai backend on /v1/chat/completions, and how ``endpoint="auto"`` chooses.

Against httpx.MockTransport servers that answer like vLLM; the real server is in
test_openai_fleet_vllm.py and test_real_backends.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from generators.backends.openai import OpenAIBackend
from generators.bootstrap import BootstrapConfig, Iteration
from generators.errors import BackendError
from generators.types import SamplingParams

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
    *, chat: bool, cards: list[dict[str, Any]] | None = None, bodies: list[dict] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A server for model "served": chat answered only when ``chat`` (a chat template)."""

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
        if bodies is not None:
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


@pytest.mark.parametrize(("chat", "endpoint"), [(True, "chat"), (False, "completions")])
def test_auto_takes_chat_exactly_when_the_server_answers_a_chat_probe(
    chat: bool, endpoint: str
) -> None:
    client = make(vllm_like(chat=chat))
    assert client.endpoint == endpoint
    assert client.model_info.is_chat is chat  # no local tokenizer: only the server can wrap


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

    assert make(handler).endpoint == "completions"


def test_chat_requests_carry_messages_and_each_sampling_parameter() -> None:
    bodies: list[dict] = []
    client = make(vllm_like(chat=True, bodies=bodies), endpoint="chat")
    out = client.generate(["p0", "p1"], SAMPLING)
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
    assert client.wrap_chat("raw prompt") == "raw prompt"  # the server applies the template
    config = BootstrapConfig()
    iteration = Iteration(backend=client, config=config, seed=3)
    template = type("T", (), {"name": "instructions", "version": 1, "sha256": "0" * 64})()
    [record] = iteration.call(
        "instructions", [template], ["raw prompt"], [["1"]], config.instruction_sampling
    )
    assert record.chat_wrapped is True and record.prompt == "raw prompt"
    assert record.messages == [{"role": "user", "content": "raw prompt"}]
    assert record.endpoint == "chat" and record.server == "http://127.0.0.1:8000"
    assert record.model.revision == CARD["root"]


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

    [completion] = make(handler).generate(["p"], SAMPLING)
    assert completion.finish_reason == "error" and "malformed chat" in completion.retry_log[0]
