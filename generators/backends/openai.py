"""The ``openai`` backend: any OpenAI-compatible server (``vllm serve``, a provider, a fleet).

It speaks ``/v1/completions`` and ``/v1/chat/completions``
(:mod:`generators.backends.openai_endpoints`), chosen per request: the caller says whether a
batch is chat (user turns, ``generate(..., chat=True)``, see ``Iteration.wraps``) or raw text to
continue (the paper's few-shot prompts). ``OpenAIBackend.routes`` maps that to an API:

- ``auto``: chat requests to chat where the server answers a one-token chat probe (else to
  completions, wrapped with the local template); raw requests to completions where the server
  answers a one-token completions probe (else to chat, as continuation requests).
- ``completions``: both to completions (chat requests wrapped with the local template).
- ``chat``: both to chat (raw requests as continuation requests).

On the chat API the server applies the template, so :meth:`OpenAIBackend.wrap_chat` leaves the
prompt as it is and each completion carries the messages sent; on completions a chat model is
wrapped with the local tokenizer of ``model_dir``. A continuation request (a chat-only provider
given a raw prompt) is one user turn asking to continue the text
(:func:`~generators.backends.openai_endpoints.continuation_messages`), recorded as the messages
sent, so provenance says the prompt was not sent raw.

Several servers are one backend (:mod:`generators.backends.fleet`): least outstanding requests,
at most ``max_concurrency`` in flight per server, a failing server taken out and probed back in.
One ``httpx.Client`` shared by a pool of threads (threads, not asyncio, so the backend also works
when the caller already runs an event loop). 429, 5xx, timeouts and connection errors are retried
with exponential backoff (honouring ``Retry-After``) on another server where one is up, and every
retry is written to the completion's ``retry_log``. Each prompt yields exactly one completion (a
retry replaces a request that never answered; none is stored twice); a prompt that still fails
comes back with ``finish_reason="error"`` instead of failing the whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from generators.backends import openai_endpoints as api
from generators.backends.base import ChatWrapper, load_tokenizer, prompt_seed
from generators.backends.fleet import BaseUrls, ServerFleet, ServerStats, server_roots
from generators.errors import BackendError, ConfigError
from generators.model_dirs import fingerprint_model_dir
from generators.types import Completion, ModelInfo, SamplingParams

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _subclass_names(klass: type) -> set[str]:
    names = {klass.__name__}
    sub: type
    for sub in klass.__subclasses__():
        names |= _subclass_names(sub)
    return names


# The names a transport failure is logged under (`attempt N: ConnectError: ...`), less the two
# a request brings on itself (an unsupported URL scheme, a request httpx cannot send).
_TRANSPORT_ERRORS = frozenset(
    _subclass_names(httpx.TransportError) - {"UnsupportedProtocol", "LocalProtocolError"}
)


def failed_unreachable(retry_log: list[str]) -> bool:
    """Whether a request that failed (``Completion.retry_log``, as this backend writes it)
    gave up on the servers, not on itself: its last attempt met a transport error (refused,
    reset, timed out) or a retryable status (:data:`RETRY_STATUS`), not a 4xx, a malformed
    answer or a host name that does not resolve, which would fail the same again. False for an
    empty log."""
    if not retry_log:
        return False
    last = retry_log[-1].split(": ", 2)
    if len(last) < 2:
        return False
    what = last[1]
    if what.startswith("HTTP "):
        return what[5:].isdigit() and int(what[5:]) in RETRY_STATUS
    detail = last[2] if len(last) > 2 else ""
    # getaddrinfo's "no such name" (-2) and "no address" (-5): a typo in the URL, the same at
    # every try; a resolver that is away (-3, "try again") is an outage like a refusal.
    if what == "ConnectError" and detail.startswith(("[Errno -2]", "[Errno -5]")):
        return False
    return what in _TRANSPORT_ERRORS


class OpenAIBackend:
    """Concurrent requests against one or several OpenAI-compatible servers.

    Args:
        base_url: the server(s): one URL, several separated by commas, or a list; with or
            without the ``/v1`` suffix (``http://vllm:8000`` and ``http://vllm:8000/v1`` both
            send to ``http://vllm:8000/v1/completions``).
        model: the served model name sent in each request.
        endpoint: ``completions``, ``chat`` or ``auto``: which API each kind of request
            goes to (see the module's table and :attr:`routes`).
        model_dir: local copy of the model, for the provenance hash and client-side chat
            wrapping on completions; without it the hash is ``unknown`` and provenance holds
            what the server reports (model id, revision) and the messages sent.
        api_key: sent as a bearer token when given.
        max_concurrency: requests in flight per server. 64 by default: a batching server
            (``vllm serve`` batches up to 128 sequences on CPU, 256 on a GPU) runs a stage's
            requests in one batch instead of waves; a provider's rate limit answers 429s,
            which are retried with backoff.
        timeout_s: per-request timeout (seconds); a timeout takes the server out.
        max_retries: retries after the first attempt.
        backoff_s: first backoff; doubles each retry, capped at ``max_backoff_s``.
        max_backoff_s: the longest wait between attempts.
        probe_backoff_s: first wait before probing a server taken out (doubles per failed
            probe, up to ``max_probe_backoff_s``).
        max_probe_backoff_s: the longest wait between probes of a down server.
        probe_timeout_s: timeout of a health probe.
        transport: an httpx transport (``httpx.MockTransport`` in unit tests).
        sleep: how to wait between attempts (injected by tests).

    Raises:
        ConfigError: a base URL is not ``http(s)://host[:port]``, or an unknown endpoint.
        BackendError: ``model_dir`` holds no model, or the servers list other models.
    """

    name = "openai"

    def __init__(
        self,
        base_url: BaseUrls,
        *,
        model: str,
        endpoint: api.EndpointChoice = "auto",
        model_dir: Path | None = None,
        api_key: str | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        probe_backoff_s: float = 1.0,
        max_probe_backoff_s: float = 30.0,
        probe_timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if endpoint not in ("auto", "completions", "chat"):
            raise ConfigError(f"openai: endpoint must be auto, completions or chat: {endpoint!r}")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._fleet = ServerFleet(
            server_roots(base_url),
            max_in_flight=max_concurrency,
            probe_backoff_s=probe_backoff_s,
            max_probe_backoff_s=max_probe_backoff_s,
        )
        self._workers = max_concurrency * len(self._fleet.roots)
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=self._workers + len(self._fleet.roots)),
        )
        self._model = model
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._probe_timeout_s = probe_timeout_s
        self._sleep = sleep
        self._chat = ChatWrapper(load_tokenizer(model_dir) if model_dir else None)
        card = self._probe_all()
        self.routes: dict[bool, api.Endpoint] = (
            self._pick_routes() if endpoint == "auto" else {True: endpoint, False: endpoint}
        )
        """The API a request goes to: ``routes[chat]`` for ``generate(..., chat=chat)``."""
        self.model_info = ModelInfo(
            name=model,
            path=str(model_dir or (card or {}).get("root") or ""),
            model_hash=fingerprint_model_dir(model_dir) if model_dir else "unknown",
            engine="openai-compatible",
            engine_version=self._server_version(),
            is_chat=self.routes[True] == "chat" or self._chat.is_chat,
            revision=api.card_revision(card),
        )

    def _probe_all(self) -> dict[str, object] | None:
        """Probe every server once (``/v1/models``); the silent ones start out of dispatch.

        Returns:
            The model's card from the first server that lists it, or None.
        """
        card = None
        for server, root in enumerate(self._fleet.roots):
            try:
                response = self._client.get(f"{root}/v1/models", timeout=self._probe_timeout_s)
            except httpx.TransportError:
                self._fleet.probed(server, healthy=False)
                continue
            self._fleet.probed(server, healthy=response.status_code < 500)
            if card is None and response.status_code == 200:
                card = api.model_card(response, self._model)
        return card

    def _pick_routes(self) -> dict[bool, api.Endpoint]:
        """Ask the first server that answers for a one-token chat and a one-token completion.

        Chat requests go to chat when the model answers the chat probe (the server has its
        template), else to completions (wrapped locally); raw requests go to completions when
        it answers that probe, else to chat as continuation requests. A server that answers
        neither gets completions for both (its failures then show in each call's retry log).
        """
        probes: dict[api.Endpoint, dict[str, object]] = {
            "chat": {"model": self._model, "messages": api.user_messages("Hi"), "max_tokens": 1},
            "completions": {"model": self._model, "prompt": "Hi", "max_tokens": 1},
        }
        for root in self._up_roots():
            try:
                answers = {
                    kind: self._client.post(f"{root}{api.PATHS[kind]}", json=body)
                    for kind, body in probes.items()
                }
            except httpx.TransportError:
                continue
            chat = api.speaks("chat", answers["chat"])
            completions = api.speaks("completions", answers["completions"])
            return {
                True: "chat" if chat else "completions",
                False: "chat" if chat and not completions else "completions",
            }
        return {True: "completions", False: "completions"}

    def _up_roots(self) -> list[str]:
        stats = self._fleet.stats()
        return [s.root for s in stats if s.up] or [s.root for s in stats]

    def _server_version(self) -> str:
        """Ask the servers for their version (vLLM answers ``/version``); ``unknown`` otherwise."""
        for root in self._up_roots():
            try:
                response = self._client.get(f"{root}/version", timeout=self._probe_timeout_s)
                if response.status_code == 200:
                    return str(response.json().get("version", "unknown"))
            except (httpx.HTTPError, ValueError):
                continue
        return "unknown"

    def server_stats(self) -> list[ServerStats]:
        """Per-server counters (requests, errors, latency, tokens, in flight, up)."""
        return self._fleet.stats()

    def generate(
        self, prompts: list[str], sampling: SamplingParams, *, chat: bool = False
    ) -> list[Completion]:
        """Send every prompt, ``max_concurrency`` per server at most; results keep prompt order.

        Args:
            prompts: raw text to continue, or (``chat``) user turns passed through
                :meth:`wrap_chat`.
            sampling: decoding settings; prompt ``i`` is seeded ``sampling.seed + i``.
            chat: the prompts are chat turns: sent on ``routes[True]``, raw ones on
                ``routes[False]``.
        """
        if not prompts:
            return []
        endpoint = self.routes[chat]
        jobs = [(p, prompt_seed(sampling, i)) for i, p in enumerate(prompts)]
        workers = min(self._workers, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-backend") as pool:
            return list(
                pool.map(lambda job: self._complete(job[0], sampling, job[1], endpoint, chat), jobs)
            )

    def _probe_due(self) -> None:
        """Probe each down server whose backoff has passed (``/health``, else ``/v1/models``)."""
        while (server := self._fleet.due_probe()) is not None:
            root = self._fleet.roots[server]
            healthy = False
            for path in ("/health", "/v1/models"):
                try:
                    response = self._client.get(f"{root}{path}", timeout=self._probe_timeout_s)
                except httpx.TransportError:
                    break  # the server is not there: no other path will answer
                if response.status_code == 200:
                    healthy = True
                    break
            self._fleet.probed(server, healthy=healthy)

    def _complete(
        self,
        prompt: str,
        sampling: SamplingParams,
        seed: int | None,
        endpoint: api.Endpoint,
        chat: bool,
    ) -> Completion:
        """One prompt, with retries; never raises for a server or network failure."""
        messages = None
        if endpoint == "chat":
            messages = api.user_messages(prompt) if chat else api.continuation_messages(prompt)
        body = api.request_body(endpoint, self._model, prompt, sampling, seed, messages)
        log: list[str] = []
        start = time.perf_counter()
        server: int | None = None
        for attempt in range(self._max_retries + 1):
            wait: float | None = None
            self._probe_due()
            server = self._fleet.acquire(avoid=server)
            root = self._fleet.roots[server]
            # Named only in a fleet, so a single server's log reads as it always has.
            where = f" ({root})" if len(self._fleet.roots) > 1 else ""
            sent = time.perf_counter()
            try:
                response = self._client.post(f"{root}{api.PATHS[endpoint]}", json=body)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                self._fleet.release(server, failed=True, latency_s=time.perf_counter() - sent)
                log.append(f"attempt {attempt + 1}{where}: {type(exc).__name__}: {exc}")
            else:
                done = self._answer(response, endpoint, server, sent, log, where, attempt)
                if isinstance(done, Completion) and sampling.top_logprobs is not None:
                    try:
                        done.top_logprobs = api.answer_top_logprobs(endpoint, response)
                    except BackendError as exc:  # the server ignored the request's logprobs
                        log.append(f"attempt {attempt + 1}{where}: {exc}")
                        break
                if isinstance(done, Completion):
                    done.latency_s = time.perf_counter() - start
                    done.messages = messages
                    return done
                if not done:
                    break  # a 4xx other than 408/429 or a malformed body fails the same again
                wait = _retry_after(response)
            if attempt < self._max_retries:
                self._sleep(min(wait or self._backoff_s * 2**attempt, self._max_backoff_s))
        latency = time.perf_counter() - start
        return Completion(
            "", "error", 0, 0, latency, len(log) - 1, log, endpoint=endpoint, messages=messages
        )

    def _answer(
        self,
        response: httpx.Response,
        endpoint: api.Endpoint,
        server: int,
        sent: float,
        log: list[str],
        where: str,
        attempt: int,
    ) -> Completion | bool:
        """Account for one answer: the completion, or whether to retry."""
        latency = time.perf_counter() - sent
        if response.status_code != 200:
            self._fleet.release(server, failed=response.status_code >= 500, latency_s=latency)
            log.append(f"attempt {attempt + 1}{where}: HTTP {response.status_code}")
            return response.status_code in RETRY_STATUS
        try:
            text, finish, prompt_tokens, completion_tokens = api.answer_text(endpoint, response)
        except BackendError as exc:
            self._fleet.release(server, failed=True, latency_s=latency)
            log.append(f"attempt {attempt + 1}{where}: {exc}")
            return False
        self._fleet.release(
            server,
            failed=False,
            latency_s=latency,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        return Completion(
            text,
            finish,
            prompt_tokens,
            completion_tokens,
            latency,
            retries=len(log),
            retry_log=log,
            server=self._fleet.roots[server],
            endpoint=endpoint,
        )

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ``prompt`` as one user turn for a chat model.

        Where chat requests go to the chat API (``routes[True]``) the server applies the
        template: the prompt is returned as it is and sent as a user message. On completions
        the local tokenizer's template wraps it.

        Raises:
            BackendError: on completions, the model has no local chat template.
        """
        return prompt if self.routes[True] == "chat" else self._chat.wrap(prompt)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
