"""Next-token log-probabilities from the backends (``SamplingParams.top_logprobs``), which the
logprob judge reads: the transformers backend against an independent forward pass of the real
embedded model, the openai backend's two API shapes against mock servers. vLLM's are checked
against transformers in test_real_backends.py."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from generators.backends.base import top_tokens
from generators.backends.openai import OpenAIBackend
from generators.types import Completion, SamplingParams

GREEDY_TOKEN = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=1)
ONE_TOKEN = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=1, top_logprobs=20)
PROMPTS = [
    "Which is a fruit?\nRESPONSE A: apple\nRESPONSE B: chair\nThe better response is Response",
    "Hi",  # a shorter prompt in the same batch: left padding must not shift the positions
]


def test_tokens_with_one_text_are_combined_not_double_counted() -> None:
    top = top_tokens([(" A", math.log(0.25)), (" B", math.log(0.5)), (" A", math.log(0.25))])
    assert top == pytest.approx({" A": math.log(0.5), " B": math.log(0.5)})


@pytest.mark.model
def test_transformers_top_logprobs_equal_an_independent_forward_pass(model_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generators.backends.transformers import TransformersBackend

    backend = TransformersBackend(model_dir, batch_size=2, dtype="float32")
    try:
        got = backend.generate(PROMPTS, ONE_TOKEN)
        plain = backend.generate(PROMPTS, GREEDY_TOKEN)
    finally:
        backend.close()
    assert all(c.top_logprobs is None for c in plain)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    for prompt, completion, other in zip(PROMPTS, got, plain, strict=True):
        assert completion.text == other.text  # asking for log-probabilities changes nothing
        with torch.inference_mode():
            ids = tok(prompt, return_tensors="pt")
            logprobs = model(**ids).logits[0, -1].float().log_softmax(-1)
        values, indices = logprobs.topk(20)
        want = top_tokens(
            (tok.decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)
        )
        assert completion.top_logprobs is not None and len(completion.top_logprobs) == 1
        (top,) = completion.top_logprobs
        assert set(top) == set(want)
        assert top == pytest.approx(want, abs=1e-4)
        assert max(top, key=lambda t: top[t]) == completion.text  # greedy took the top token


def _server(
    endpoint: str, bodies: list[dict[str, object]], *, with_logprobs: bool = True
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "served", "root": "x"}]})
        if path == "/version":
            return httpx.Response(200, json={"version": "0.32.0"})
        body = json.loads(request.content)
        bodies.append(body)
        usage = {"prompt_tokens": 5, "completion_tokens": 1}
        logprobs: dict[str, object]
        choice: dict[str, object]
        if endpoint == "chat":
            logprobs = {
                "content": [
                    {
                        "token": " B",
                        "logprob": -0.2,
                        "top_logprobs": [
                            {"token": " B", "logprob": -0.2},
                            {"token": " A", "logprob": -1.8},
                        ],
                    }
                ]
            }
            choice = {"message": {"role": "assistant", "content": " B"}, "finish_reason": "length"}
        else:
            logprobs = {"tokens": [" B"], "top_logprobs": [{" B": -0.2, " A": -1.8}]}
            choice = {"text": " B", "finish_reason": "length"}
        if with_logprobs:
            choice["logprobs"] = logprobs
        return httpx.Response(200, json={"choices": [choice], "usage": usage})

    return handler


def _ask(
    endpoint: str, sampling: SamplingParams, *, with_logprobs: bool = True
) -> tuple[Completion, list[dict[str, object]]]:
    """One prompt through the openai backend against a mock server: (completion, bodies)."""
    bodies: list[dict[str, object]] = []
    backend = OpenAIBackend(
        "http://127.0.0.1:8000/v1",
        model="served",
        endpoint=endpoint,  # type: ignore[arg-type]
        transport=httpx.MockTransport(_server(endpoint, bodies, with_logprobs=with_logprobs)),
        sleep=lambda s: None,
    )
    try:
        (completion,) = backend.generate(["Which? The better response is Response"], sampling)
    finally:
        backend.close()
    return completion, bodies


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_openai_backend_asks_for_and_reads_top_logprobs_on_each_endpoint(endpoint: str) -> None:
    completion, bodies = _ask(endpoint, ONE_TOKEN)
    assert completion.top_logprobs == [{" B": -0.2, " A": -1.8}]
    asked = bodies[-1]
    if endpoint == "chat":
        assert asked["logprobs"] is True and asked["top_logprobs"] == 20
    else:
        assert asked["logprobs"] == 20 and "top_logprobs" not in asked


def test_openai_backend_without_logprobs_asked_sends_none() -> None:
    completion, bodies = _ask("completions", GREEDY_TOKEN, with_logprobs=False)
    assert completion.top_logprobs is None and "logprobs" not in bodies[-1]


def test_a_server_that_ignores_the_logprobs_request_is_an_error_not_a_guess() -> None:
    completion, bodies = _ask("completions", ONE_TOKEN, with_logprobs=False)
    assert completion.finish_reason == "error" and completion.top_logprobs is None
    assert "no top log-probabilities" in completion.retry_log[-1]
    assert len(bodies) == 1  # the same request would be ignored again: no retry
