"""A backend that answers from a script, for unit tests of prompts and parsing.

Feature tests never use it: it exercises the library's own logic, not inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from generators.errors import BackendError
from generators.types import Completion, ModelInfo, SamplingParams

Reply = str | Completion


class ScriptedBackend:
    """Replies from a list (in order, cycling) or from a function of the prompt.

    A reply may be a plain string (finish reason ``"stop"``) or a full :class:`Completion`, so a
    test can script a length-cut or failed answer. Token counts of string replies are word counts.

    Args:
        replies: a list of replies, or a callable mapping a prompt to its reply.
        model_name: the name recorded in ``model_info``.
        is_chat: pretend the model has a chat template (ChatML-style wrapping).
    """

    name = "scripted"

    def __init__(
        self,
        replies: Callable[[str], Reply] | list[Reply],
        *,
        model_name: str = "scripted",
        is_chat: bool = False,
    ) -> None:
        if isinstance(replies, list) and not replies:
            raise BackendError("a scripted backend needs at least one reply")
        self._replies = replies
        self._next = 0
        self.calls: list[tuple[list[str], SamplingParams]] = []
        self.chat_flags: list[bool] = []
        self.model_info = ModelInfo(
            name=model_name,
            path="",
            model_hash="scripted",
            engine="scripted",
            engine_version="0",
            is_chat=is_chat,
        )

    def _reply(self, prompt: str) -> Reply:
        if callable(self._replies):
            return self._replies(prompt)
        reply = self._replies[self._next % len(self._replies)]
        self._next += 1
        return reply

    def generate(
        self, prompts: list[str], sampling: SamplingParams, *, chat: bool = False
    ) -> list[Completion]:
        """Answer each prompt from the script; remember the call in ``calls`` and whether it
        was a chat batch in ``chat_flags``."""
        self.calls.append((list(prompts), sampling))
        self.chat_flags.append(chat)
        out = []
        for prompt in prompts:
            start = time.perf_counter()
            reply = self._reply(prompt)
            latency = time.perf_counter() - start
            if isinstance(reply, Completion):
                out.append(replace(reply, retry_log=list(reply.retry_log)))
            else:
                out.append(
                    Completion(reply, "stop", len(prompt.split()), len(reply.split()), latency)
                )
        return out

    def wrap_chat(self, prompt: str) -> str:
        """Wrap ChatML-style when ``is_chat``; otherwise refuse like a base model."""
        if not self.model_info.is_chat:
            raise BackendError("this model has no chat template: send the raw prompt instead")
        return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"

    def close(self) -> None:
        """Nothing to release."""
