"""The one interface every inference backend implements, and the chat wrapping they share.

A backend takes a whole batch of prompts and one :class:`SamplingParams`, decides itself how to
run it (one engine call, sub-batches, concurrent HTTP requests) and returns one
:class:`Completion` per prompt, in order. Engine objects never leave the backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from generators.errors import BackendError
from generators.types import Completion, ModelInfo, SamplingParams


@runtime_checkable
class Backend(Protocol):
    """An inference backend.

    Attributes:
        name: the backend kind ("vllm", "openai", "transformers", "scripted").
        model_info: which model answers, for provenance.
    """

    name: str
    model_info: ModelInfo

    def generate(
        self, prompts: list[str], sampling: SamplingParams, *, chat: bool = False
    ) -> list[Completion]:
        """Complete every prompt; one completion per prompt, in order.

        ``chat`` tells the backend which kind of prompt each is (the caller decides, see
        ``Iteration.wraps``): True for user turns passed through :meth:`wrap_chat`, False for
        raw text to continue. An in-process backend already holds the templated text and
        sends both the same way; a server backend picks its API by it (the ``openai``
        backend's ``routes``).
        """
        ...

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ``prompt`` as one user turn with the model's chat template.

        Raises:
            BackendError: the model has no chat template.
        """
        ...

    def close(self) -> None:
        """Release the engine, client or threads; the backend is unusable afterwards."""
        ...


def top_tokens(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """One generated position's top tokens as decoded text -> natural-log probability.

    Distinct token ids that decode to one text (rare: byte fallbacks) are combined by
    log-sum-exp, so the dict holds the probability of the text, never double-counted.
    """
    out: dict[str, float] = {}
    for text, logprob in pairs:
        if text in out:
            out[text] = float(np.logaddexp(out[text], logprob))
        else:
            out[text] = float(logprob)
    return out


def prompt_seed(sampling: SamplingParams, index: int) -> int | None:
    """The seed for the ``index``-th prompt of a batch: ``sampling.seed + index``.

    Backends that seed each request (vllm, openai) use it, so two equal prompts in one batch
    still get different samples and the same batch replays the same samples. A backend that
    can only seed a whole batch (transformers) seeds it with ``sampling.seed``.
    """
    return None if sampling.seed is None else sampling.seed + index


class ChatWrapper:
    """Applies a tokenizer's chat template to raw prompts (one user turn + generation prompt).

    Args:
        tokenizer: any object with a transformers-style ``apply_chat_template`` and
            ``chat_template``; ``None`` for a base model.
    """

    def __init__(self, tokenizer: Any | None) -> None:
        self._tokenizer = tokenizer

    @property
    def is_chat(self) -> bool:
        """True when the tokenizer carries a chat template."""
        return self._tokenizer is not None and bool(getattr(self._tokenizer, "chat_template", None))

    def wrap(self, prompt: str) -> str:
        """Return ``prompt`` wrapped as a user message, ready for the assistant's answer.

        Raises:
            BackendError: the model is not a chat model.
        """
        if self._tokenizer is None or not self.is_chat:
            raise BackendError("this model has no chat template: send the raw prompt instead")
        messages = [{"role": "user", "content": prompt}]
        text: str = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return text


def load_tokenizer(model_dir: Path) -> Any:
    """Load a local tokenizer with transformers (never from a hub).

    Raises:
        BackendError: transformers is missing or the directory holds no tokenizer.
    """
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise BackendError("chat wrapping needs transformers") from exc
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BackendError(f"no tokenizer in {model_dir}: {exc}") from exc
