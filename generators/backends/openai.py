"""The ``openai`` backend: any OpenAI-compatible completions server (``vllm serve``, a fleet).

Several servers are one backend: each request goes to the least busy healthy one and a retry
fails over to another (:mod:`generators.backends.fleet`). One ``httpx.Client`` shared by a
bounded pool of threads (threads, not asyncio, so the backend also works when the caller
already runs an event loop). Each prompt is one ``/v1/completions``
request; 429, 5xx, timeouts and connection errors are retried with exponential backoff (honouring
``Retry-After``), and every retry is written to the completion's ``retry_log``. A prompt that
still fails comes back as a completion with ``finish_reason="error"`` instead of failing the
whole batch: the caller records it as a parse failure (``backend_error``) with the log.

Chat models are wrapped client-side with the tokenizer of ``model_dir`` (when given), and the
wrapped text goes to ``/v1/completions`` like any raw prompt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from generators.backends.base import ChatWrapper, load_tokenizer, prompt_seed
from generators.backends.fleet import BaseUrls, ServerFleet, server_roots
from generators.errors import BackendError
from generators.model_dirs import fingerprint_model_dir
from generators.types import Completion, ModelInfo, SamplingParams

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class OpenAIBackend:
    """Concurrent completions requests against an OpenAI-compatible server.

    Args:
        base_url: the server(s): one URL, several separated by commas, or a list; with or
            without the ``/v1`` suffix (``http://vllm:8000`` and ``http://vllm:8000/v1`` both
            send to ``http://vllm:8000/v1/completions``).
        model: the served model name sent in each request.
        model_dir: local copy of the model, for the provenance hash and client-side chat
            wrapping; without it the model is treated as a base model with an unknown hash.
        api_key: sent as a bearer token when given.
        max_concurrency: requests in flight at once.
        timeout_s: per-request timeout.
        max_retries: retries after the first attempt.
        backoff_s: first backoff; doubles each retry, capped at ``max_backoff_s``.
        max_backoff_s: the longest wait between attempts.
        transport: an httpx transport (``httpx.MockTransport`` in unit tests).
        sleep: how to wait between attempts (injected by tests).

    Raises:
        ConfigError: a base URL is not ``http(s)://host[:port]``.
        BackendError: ``model_dir`` is given but holds no model.
    """

    name = "openai"

    def __init__(
        self,
        base_url: BaseUrls,
        *,
        model: str,
        model_dir: Path | None = None,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._fleet = ServerFleet(server_roots(base_url))
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._model = model
        self._max_concurrency = max_concurrency
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._chat = ChatWrapper(load_tokenizer(model_dir) if model_dir else None)
        self.model_info = ModelInfo(
            name=model,
            path=str(model_dir or ""),
            model_hash=fingerprint_model_dir(model_dir) if model_dir else "unknown",
            engine="openai-compatible",
            engine_version=self._server_version(),
            is_chat=self._chat.is_chat,
        )

    def _server_version(self) -> str:
        """Ask the servers for their version (vLLM answers ``/version``); ``unknown`` otherwise."""
        for root in self._fleet.roots:
            try:
                response = self._client.get(f"{root}/version", timeout=5.0)
                if response.status_code == 200:
                    return str(response.json().get("version", "unknown"))
            except (httpx.HTTPError, ValueError):
                continue
        return "unknown"

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Completion]:
        """Send every prompt, at most ``max_concurrency`` at a time; results keep prompt order."""
        if not prompts:
            return []
        jobs = [(p, prompt_seed(sampling, i)) for i, p in enumerate(prompts)]
        workers = min(self._max_concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-backend") as pool:
            return list(pool.map(lambda job: self._complete(job[0], sampling, job[1]), jobs))

    def _payload(self, prompt: str, sampling: SamplingParams, seed: int | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self._model,
            "prompt": prompt,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "n": 1,
        }
        if sampling.stop:
            payload["stop"] = list(sampling.stop)
        if seed is not None:
            payload["seed"] = seed
        return payload

    def _complete(self, prompt: str, sampling: SamplingParams, seed: int | None) -> Completion:
        """One prompt, with retries; never raises for a server or network failure."""
        payload = self._payload(prompt, sampling, seed)
        log: list[str] = []
        start = time.perf_counter()
        server: int | None = None
        for attempt in range(self._max_retries + 1):
            wait: float | None = None
            server = self._fleet.acquire(avoid=server)
            root = self._fleet.roots[server]
            # Named only in a fleet, so a single server's log reads as it always has.
            where = f" ({root})" if len(self._fleet.roots) > 1 else ""
            try:
                response = self._client.post(f"{root}/v1/completions", json=payload)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                self._fleet.release(server, failed=True)
                log.append(f"attempt {attempt + 1}{where}: {type(exc).__name__}: {exc}")
            else:
                self._fleet.release(server, failed=response.status_code >= 500)
                if response.status_code == 200:
                    try:
                        return _completion(response, time.perf_counter() - start, log)
                    except BackendError as exc:
                        log.append(f"attempt {attempt + 1}{where}: {exc}")
                        break
                log.append(f"attempt {attempt + 1}{where}: HTTP {response.status_code}")
                if response.status_code not in RETRY_STATUS:
                    break  # a 4xx other than 408/429 will fail the same way again
                wait = _retry_after(response)
            if attempt < self._max_retries:
                self._sleep(min(wait or self._backoff_s * 2**attempt, self._max_backoff_s))
        return Completion("", "error", 0, 0, time.perf_counter() - start, len(log) - 1, log)

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ``prompt`` with the local tokenizer's chat template (see :class:`ChatWrapper`)."""
        return self._chat.wrap(prompt)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _completion(response: httpx.Response, latency: float, log: list[str]) -> Completion:
    """Turn a 200 answer into a Completion; a malformed body is a backend error."""
    try:
        body = response.json()
        choice = body["choices"][0]
        usage = body.get("usage") or {}
        return Completion(
            text=choice.get("text") or "",
            finish_reason=choice.get("finish_reason") or "unknown",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            retries=len(log),
            retry_log=log,
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"malformed completions response: {response.text[:200]!r}") from exc
