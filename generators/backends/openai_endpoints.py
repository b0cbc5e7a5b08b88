"""The two OpenAI text APIs the ``openai`` backend speaks: request bodies and answers.

``/v1/completions`` takes a prompt string; ``/v1/chat/completions`` takes messages and lets the
server apply the model's chat template, so a chat model needs no local tokenizer. Both take the
same sampling parameters here except the length limit: chat sends ``max_completion_tokens``
(OpenAI's name since 2024; vLLM reads it too) where completions sends ``max_tokens``.
Source: the OpenAI API reference (Completions, Chat Completions) and vLLM's protocol models.

A raw (not chat-wrapped) prompt on a chat-only provider is sent as a continuation request
(:func:`continuation_messages`): one user turn asking the model to continue the text.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from generators.backends.base import top_tokens
from generators.errors import BackendError
from generators.types import SamplingParams

Endpoint = Literal["completions", "chat"]
EndpointChoice = Literal["auto", "completions", "chat"]
PATHS: dict[Endpoint, str] = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


CONTINUE_INSTRUCTION = (
    "Continue the following text exactly where it stops. Reply with the continuation only: "
    "do not repeat the text and do not comment on it."
)
"""The user turn a raw prompt is wrapped in on a chat-only provider (version it if changed)."""


def user_messages(prompt: str) -> list[dict[str, str]]:
    """The messages a prompt is sent as on the chat API: one user turn."""
    return [{"role": "user", "content": prompt}]


def continuation_messages(prompt: str) -> list[dict[str, str]]:
    """The messages a raw prompt is sent as where the provider has no ``/v1/completions``:
    one user turn, :data:`CONTINUE_INSTRUCTION` then a blank line then the text."""
    return user_messages(f"{CONTINUE_INSTRUCTION}\n\n{prompt}")


def request_body(
    endpoint: Endpoint,
    model: str,
    prompt: str,
    sampling: SamplingParams,
    seed: int | None,
    messages: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The JSON body for one prompt on ``endpoint`` (one choice, no streaming).

    On chat, ``messages`` (default: ``prompt`` as one user turn) is what is sent.
    """
    body: dict[str, Any] = {
        "model": model,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "n": 1,
    }
    if endpoint == "chat":
        body["messages"] = messages if messages is not None else user_messages(prompt)
        body["max_completion_tokens"] = sampling.max_tokens
    else:
        body["prompt"] = prompt
        body["max_tokens"] = sampling.max_tokens
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if seed is not None:
        body["seed"] = seed
    if sampling.top_logprobs is not None:
        if endpoint == "chat":
            body["logprobs"] = True
            body["top_logprobs"] = sampling.top_logprobs
        else:
            body["logprobs"] = sampling.top_logprobs
    return body


def answer_top_logprobs(endpoint: Endpoint, response: httpx.Response) -> list[dict[str, float]]:
    """Per generated token, its top tokens (text -> log-probability) from a 200 answer.

    Completions answer ``choices[0].logprobs.top_logprobs`` (a dict per token); chat answers
    ``choices[0].logprobs.content[i].top_logprobs`` (a list of ``{token, logprob}``).

    Raises:
        BackendError: the answer carries no log-probabilities in the endpoint's shape.
    """
    try:
        logprobs = response.json()["choices"][0]["logprobs"]
        if endpoint == "chat":
            return [
                top_tokens((str(t["token"]), float(t["logprob"])) for t in pos["top_logprobs"])
                for pos in logprobs["content"]
            ]
        return [
            top_tokens((str(t), float(lp)) for t, lp in pos.items())
            for pos in logprobs["top_logprobs"]
        ]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendError(
            f"{endpoint} answer has no top log-probabilities: {response.text[:200]!r}"
        ) from exc


def answer_text(endpoint: Endpoint, response: httpx.Response) -> tuple[str, str, int, int]:
    """(text, finish reason, prompt tokens, completion tokens) of a 200 answer.

    Raises:
        BackendError: the body is not the endpoint's answer shape.
    """
    try:
        body = response.json()
        choice = body["choices"][0]
        text = choice["message"]["content"] if endpoint == "chat" else choice["text"]
        usage = body.get("usage") or {}
        return (
            text or "",
            choice.get("finish_reason") or "unknown",
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"malformed {endpoint} response: {response.text[:200]!r}") from exc


def model_card(response: httpx.Response, model: str) -> dict[str, Any] | None:
    """The entry for ``model`` in a ``/v1/models`` answer; None when the answer lists none.

    Raises:
        BackendError: the server lists models and ``model`` is not one of them.
    """
    try:
        cards = [c for c in response.json().get("data", []) if isinstance(c, dict)]
    except (ValueError, AttributeError):
        return None
    for card in cards:
        if card.get("id") == model:
            return card
    if cards:
        served = ", ".join(str(c.get("id")) for c in cards)
        raise BackendError(f"the server serves {served}, not {model!r}")
    return None


def card_revision(card: dict[str, Any] | None) -> str:
    """What the server reports as the model's revision: ``revision`` if it says, else vLLM's
    ``root`` (the weights it loaded, a path or hub id), else empty."""
    if not card:
        return ""
    return str(card.get("revision") or card.get("root") or "")


def speaks(endpoint: Endpoint, response: httpx.Response) -> bool:
    """Whether a one-token probe of ``endpoint`` got that API's answer: a choice with
    ``text`` on completions (a chat-only provider answers 404, or 400 naming a chat model), a
    choice with a ``message`` on chat (a base model without a chat template answers 400)."""
    if response.status_code != 200:
        return False
    key, shape = ("message", dict) if endpoint == "chat" else ("text", str)
    try:
        return isinstance(response.json()["choices"][0][key], shape)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
