"""The openai backend's retries, bounds and payloads, against httpx.MockTransport.

The same backend runs against a real vLLM server in test_real_backends.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from generators.backends.fleet import ServerFleet, server_roots
from generators.backends.openai import OpenAIBackend, failed_unreachable
from generators.errors import ConfigError
from generators.types import SamplingParams

SAMPLING = SamplingParams(
    temperature=0.7, top_p=0.5, presence_penalty=2.0, max_tokens=16, stop=("\n\n",), seed=10
)


def ok(text: str = " A task.", finish: str = "stop") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "choices": [{"text": text, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        },
    )


def completions_only(handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    """A server that answers discovery as vLLM serving a base model, then ``handler``.

    ``/v1/models`` lists nothing (no model check), ``/health`` is up, the chat probe is a 400
    (no chat template) and the completions probe answered, so ``endpoint="auto"`` settles on
    completions for both kinds of request; ``handler`` sees only the requests after them.
    """

    def serve(request: httpx.Request) -> httpx.Response:
        probe = request.method == "POST" and json.loads(request.content).get("max_tokens") == 1
        if probe and request.url.path.endswith("/v1/completions"):
            return ok("x")
        if request.url.path.endswith("/v1/models"):
            return httpx.Response(200, json={"object": "list", "data": []})
        if request.url.path.endswith("/health"):
            return httpx.Response(200)
        if request.url.path.endswith("/v1/chat/completions"):
            return httpx.Response(400, json={"error": "no chat template"})
        return handler(request)

    return serve


def backend(
    handler: Callable[[httpx.Request], httpx.Response],
    sleeps: list[float] | None = None,
    **options: Any,
) -> OpenAIBackend:
    waits = sleeps if sleeps is not None else []
    return OpenAIBackend(
        "http://server.test",
        model="served",
        transport=httpx.MockTransport(completions_only(handler)),
        sleep=waits.append,
        **options,
    )


def test_payload_carries_every_sampling_parameter_and_a_per_prompt_seed() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(200, json={"version": "9.9"})
        bodies.append(json.loads(request.content))
        return ok()

    client = backend(handler)
    out = client.generate(["p0", "p1"], SAMPLING)
    assert client.model_info.engine_version == "9.9"
    assert [c.text for c in out] == [" A task.", " A task."]
    assert out[0].prompt_tokens == 7 and out[0].completion_tokens == 3 and out[0].retries == 0
    by_prompt = {b["prompt"]: b for b in bodies}
    assert by_prompt["p0"]["seed"] == 10 and by_prompt["p1"]["seed"] == 11
    assert by_prompt["p0"]["presence_penalty"] == 2.0 and by_prompt["p0"]["stop"] == ["\n\n"]
    assert by_prompt["p0"]["model"] == "served" and by_prompt["p0"]["top_p"] == 0.5


def test_retries_on_503_and_429_then_succeeds_and_records_each_retry() -> None:
    answers = iter(
        [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0.25"}), ok()]
    )
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(404)
        return next(answers)

    client = backend(handler, sleeps, backoff_s=0.5)
    [completion] = client.generate(["p"], SAMPLING)
    assert completion.finish_reason == "stop"
    assert completion.retries == 2
    assert completion.retry_log == ["attempt 1: HTTP 503", "attempt 2: HTTP 429"]
    assert sleeps == [0.5, 0.25]  # exponential backoff, then the server's Retry-After
    assert client.model_info.engine_version == "unknown"


def test_connection_errors_are_retried() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(404)
        calls["n"] += 1
        if calls["n"] <= 2:  # the first two attempts (discovery is answered above)
            raise httpx.ConnectError("refused", request=request)
        return ok()

    [completion] = backend(handler).generate(["p"], SAMPLING)
    assert completion.retries == 2
    assert all("ConnectError" in line for line in completion.retry_log)


def test_exhausted_retries_give_an_error_completion_not_an_exception() -> None:
    sleeps: list[float] = []
    client = backend(lambda request: httpx.Response(500), sleeps, max_retries=3, backoff_s=1.0)
    [completion] = client.generate(["p"], SAMPLING)
    assert completion.finish_reason == "error" and completion.text == ""
    assert len(completion.retry_log) == 4 and completion.retries == 3
    assert sleeps == [1.0, 2.0, 4.0]


def test_client_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    [completion] = backend(lambda r: httpx.Response(400), sleeps).generate(["p"], SAMPLING)
    assert completion.finish_reason == "error"
    assert completion.retry_log == ["attempt 1: HTTP 400"] and sleeps == []


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def _time_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


@pytest.mark.parametrize(
    ("handler", "on_servers"),
    [
        pytest.param(_refuse, True, id="refused"),
        pytest.param(_time_out, True, id="timeout"),
        pytest.param(lambda r: httpx.Response(503), True, id="503"),
        pytest.param(lambda r: httpx.Response(429), True, id="429"),
        pytest.param(lambda r: httpx.Response(400), False, id="400"),
        pytest.param(lambda r: httpx.Response(404), False, id="404"),
        pytest.param(lambda r: httpx.Response(200, json={"x": 1}), False, id="malformed"),
    ],
)
def test_a_failed_request_says_whether_it_gave_up_on_the_servers(
    handler: Callable[[httpx.Request], httpx.Response], on_servers: bool
) -> None:
    """The worker drops a batch none of whose requests got through to a server (and hands the
    run back) but commits one whose requests were refused for themselves: the log each
    failure leaves tells them apart, in a fleet (the server named in the line) or not."""
    for base_url in ("http://server.test", "http://a.test,http://b.test:8000"):
        client = OpenAIBackend(
            base_url,
            model="served",
            transport=httpx.MockTransport(completions_only(handler)),
            sleep=lambda _s: None,
            max_retries=1,
        )
        [completion] = client.generate(["p"], SAMPLING)
        assert completion.finish_reason == "error"
        assert failed_unreachable(completion.retry_log) is on_servers, completion.retry_log
    assert failed_unreachable([]) is False


def test_malformed_success_body_is_an_error_completion() -> None:
    [completion] = backend(lambda r: httpx.Response(200, json={"x": 1})).generate(["p"], SAMPLING)
    assert completion.finish_reason == "error"
    assert "malformed" in completion.retry_log[0]


def test_concurrency_is_bounded_and_order_is_kept() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(404)
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return ok(json.loads(request.content)["prompt"].upper())

    prompts = [f"p{i}" for i in range(24)]
    out = backend(handler, max_concurrency=3).generate(prompts, SAMPLING)
    assert [c.text for c in out] == [p.upper() for p in prompts]
    assert 1 < state["peak"] <= 3


def test_base_model_without_local_copy_refuses_chat_wrapping() -> None:
    from generators.errors import BackendError

    client = backend(lambda r: ok())
    assert client.model_info.is_chat is False and client.model_info.model_hash == "unknown"
    with pytest.raises(BackendError):
        client.wrap_chat("hi")


def completions_urls(base_url: Any, prompts: int = 4, **options: Any) -> list[str]:
    """The URLs a backend built on ``base_url`` posts completions to, for a batch."""
    seen: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/version"):
            return httpx.Response(404)
        with lock:
            seen.append(str(request.url))
        return ok()

    client = OpenAIBackend(
        base_url,
        model="m",
        transport=httpx.MockTransport(completions_only(handler)),
        sleep=lambda s: None,
        **options,
    )
    out = client.generate([f"p{i}" for i in range(prompts)], SAMPLING)
    assert all(c.finish_reason == "stop" for c in out)
    return seen


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://vllm:8000/v1", "http://vllm:8000/v1/completions"),  # the OpenAI SDK's form
        ("http://vllm:8000/v1/", "http://vllm:8000/v1/completions"),
        ("http://vllm:8000", "http://vllm:8000/v1/completions"),
        ("http://vllm:8000/", "http://vllm:8000/v1/completions"),
        ("https://gw.example:9443/llm/v1", "https://gw.example:9443/llm/v1/completions"),
        (" http://10.0.0.7:8000/v1 ", "http://10.0.0.7:8000/v1/completions"),
    ],
)
def test_a_base_url_with_or_without_v1_reaches_v1_completions(base_url: str, expected: str) -> None:
    assert set(completions_urls(base_url)) == {expected}


@pytest.mark.parametrize(
    "base_url",
    [
        "http://a.test:8000/v1,http://b.test:8000/v1",
        "http://a.test:8000, http://b.test:8000/v1/",
        ["http://a.test:8000/v1", "http://b.test:8000"],
    ],
)
def test_several_base_urls_share_a_batch(base_url: Any) -> None:
    urls = completions_urls(base_url, prompts=8, max_concurrency=1)
    assert sorted(set(urls)) == [
        "http://a.test:8000/v1/completions",
        "http://b.test:8000/v1/completions",
    ]
    assert urls.count("http://a.test:8000/v1/completions") == 4  # idle fleet: turns alternate


@pytest.mark.parametrize("discovery_fails", [False, True])
def test_a_failing_server_is_taken_out_and_named_in_the_retry_log(discovery_fails: bool) -> None:
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/version"):
            return httpx.Response(404)
        if request.method == "POST" and request.url.path.endswith("/v1/completions"):
            posts.append(str(request.url.host))
        return httpx.Response(503) if request.url.host == "a.test" else ok()

    client = OpenAIBackend(
        "http://a.test,http://b.test,http://c.test",
        model="m",
        # Discovery through the handler: a's /v1/models is a 503 and a starts out of dispatch.
        transport=httpx.MockTransport(handler if discovery_fails else completions_only(handler)),
        sleep=lambda s: None,
        max_concurrency=1,
        endpoint="completions",
    )
    out = client.generate([f"p{i}" for i in range(6)], SAMPLING)
    assert all(c.finish_reason == "stop" for c in out)
    logs = [line for c in out for line in c.retry_log]
    if discovery_fails:
        assert logs == [] and "a.test" not in posts
    else:  # a answered discovery, failed its first request, and was never sent another
        assert logs == ["attempt 1 (http://a.test): HTTP 503"] and posts.count("a.test") == 1
    assert [s.up for s in client.server_stats()] == [False, True, True]


@pytest.mark.parametrize("base_url", ["vllm:8000", "", " , ", "ftp://x.test", []])
def test_a_base_url_that_is_not_http_is_refused(base_url: Any) -> None:
    with pytest.raises(ConfigError):
        server_roots(base_url)


def test_fleet_picks_the_least_busy_and_probes_a_failed_server_back_with_backoff() -> None:
    now = [0.0]
    fleet = ServerFleet(
        ["http://a", "http://b", "http://c"],
        probe_backoff_s=10,
        max_probe_backoff_s=25,
        clock=lambda: now[0],
    )
    assert [fleet.acquire() for _ in range(3)] == [0, 1, 2]
    fleet.release(1, failed=False, latency_s=0.1)
    assert fleet.acquire() == 1 and fleet.outstanding() == [1, 1, 1]
    for server in (0, 1, 2):
        fleet.release(server, failed=server == 0, latency_s=0.1)
    assert fleet.outstanding() == [0, 0, 0]
    assert {fleet.acquire() for _ in range(2)} == {1, 2}  # a is out
    assert fleet.acquire(avoid=1) == 2
    assert fleet.due_probe() is None  # not before its backoff
    now[0] = 10.5
    assert fleet.due_probe() == 0 and fleet.due_probe() is None  # claimed by one prober
    fleet.probed(0, healthy=False)  # still down: the next probe waits twice as long
    now[0] = 10.5 + 19.9
    assert fleet.due_probe() is None and 0 not in {fleet.acquire() for _ in range(3)}
    now[0] = 10.5 + 20.1
    assert fleet.due_probe() == 0
    fleet.probed(0, healthy=False)  # capped at max_probe_backoff_s
    now[0] = 30.6 + 25.1
    assert fleet.due_probe() == 0
    fleet.probed(0, healthy=True)
    assert fleet.acquire() == 0  # back in, and the least busy
    assert [s.up for s in fleet.stats()] == [True, True, True]
