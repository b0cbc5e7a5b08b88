"""Render chat examples with the tokenizer's chat template and mark the assistant tokens to learn.

Labels are built from token positions, never from token ids: the end-of-turn token is supervised
even when it is also the pad token (pad == EOS) or the tokenizer has no pad token at all.

Message content is text, never control: a user writing ``<|im_end|>`` gets the ids of those
characters, not the end-of-turn token (which would end the turn early and teach the model a
fake turn boundary). Only the template's own text yields special tokens.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.dataset import ChatExample
from trainer.errors import ChatTemplateError, TruncationError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedExample:
    """One rendered example: token ids and which of them are assistant tokens to learn."""

    example_id: str
    task_type: str
    input_ids: tuple[int, ...]
    assistant_mask: tuple[bool, ...]

    @property
    def labels(self) -> list[int]:
        """Token ids at assistant positions, IGNORE_INDEX elsewhere (aligned with input_ids)."""
        pairs = zip(self.input_ids, self.assistant_mask, strict=True)
        return [t if m else IGNORE_INDEX for t, m in pairs]

    @property
    def n_supervised(self) -> int:
        """How many tokens are predicted with a loss (position 0 is never predicted)."""
        return sum(self.assistant_mask[1:])


@dataclass
class TokenizedSplit:
    """A tokenized split plus what truncation cost it."""

    examples: list[TokenizedExample]
    n_input: int
    truncated_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Counts for the metrics and the manifest."""
        types = Counter(e.task_type for e in self.examples)
        return {
            "examples_in": self.n_input,
            "examples_kept": len(self.examples),
            "truncated": len(self.truncated_ids),
            "dropped_no_supervision": len(self.dropped_ids),
            "dropped_ids": self.dropped_ids[:50],
            "supervised_tokens": sum(e.n_supervised for e in self.examples),
            "tokens": sum(len(e.input_ids) for e in self.examples),
            "examples_by_task_type": dict(sorted(types.items())),
        }


class ChatTokenizer:
    """Turns chat examples into token ids with assistant-only supervision.

    Args:
        tokenizer: A Hugging Face tokenizer with a chat template.

    Raises:
        ChatTemplateError: The tokenizer has no chat template.
    """

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError("the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.bos_id: int | None = tokenizer.bos_token_id
        self.eos_id: int | None = tokenizer.eos_token_id
        probe = tokenizer("x", add_special_tokens=True)["input_ids"]
        # The tokenizer's own habit decides whether sequences start with BOS: some templates
        # render it, some tokenizers add it, and doing both would give two.
        self.adds_bos = self.bos_id is not None and probe[:1] == [self.bos_id]
        # The text of every special token (the template's <|im_start|>/<|im_end|>, EOS, the
        # tokenizer's other added special tokens): in message content it is plain text.
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self.special_texts = sorted(
            {str(t) for t in tokenizer.all_special_tokens}
            | {t.content for t in added.values() if getattr(t, "special", False)}
        )

    def holds_special_text(self, messages: Sequence[dict[str, str]]) -> bool:
        """Whether any message content contains the text of a special token."""
        return any(s in m["content"] for m in messages for s in self.special_texts)

    def _encode(
        self,
        messages: Sequence[dict[str, str]],
        add_generation_prompt: bool,
        *,
        literal_content: bool = False,
    ) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
        if literal_content:
            ids = self._encode_pieces(messages, add_generation_prompt, text)
        else:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if self.adds_bos and self.bos_id is not None and ids[:1] != [self.bos_id]:
            ids.insert(0, self.bos_id)
        return ids

    def _encode_pieces(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool, text: str
    ) -> list[int]:
        """Tokenize the template's own text with special tokens, each content as plain text.

        The template is rendered with a unique marker in place of each content, so the text
        between markers is exactly what the template writes (its control tokens); each content
        is tokenized with ``split_special_tokens=True`` (transformers' switch that reads special
        tokens' text as ordinary characters). Content boundaries are pre-token boundaries of
        these templates (after a newline, before <|im_end|>), so plain text tokenizes as in the
        whole-text path.

        Raises:
            ChatTemplateError: The template does not insert contents verbatim, so the two
                cannot be told apart.
        """
        tag = uuid.uuid4().hex
        marked = [{**m, "content": f"<{tag}:{i}>"} for i, m in enumerate(messages)]
        rendered = self.tokenizer.apply_chat_template(
            marked, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        pieces = re.split(f"<{tag}:(\\d+)>", rendered)
        # Odd positions hold a message index: put each content back where its marker was.
        texts = [messages[int(p)]["content"] if i % 2 else p for i, p in enumerate(pieces)]
        if "".join(texts) != text:
            raise ChatTemplateError(
                "the chat template changes message content, so content holding a special "
                "token's text cannot be kept apart from the template's control tokens"
            )
        ids: list[int] = []
        for index, piece in enumerate(texts):
            # Only content is read with special tokens split into ordinary characters.
            encoded = self.tokenizer(
                piece, add_special_tokens=False, split_special_tokens=bool(index % 2)
            )
            ids += encoded["input_ids"]
        return ids

    def _check_bos(self, ids: list[int], example_id: str) -> None:
        if self.bos_id is None:
            return
        if ids[:2] == [self.bos_id, self.bos_id]:
            raise ChatTemplateError(f"{example_id}: the rendered sequence starts with two BOS")
        if self.adds_bos and ids[:1] != [self.bos_id]:
            raise ChatTemplateError(f"{example_id}: the rendered sequence does not start with BOS")

    def assistant_spans(self, example: ChatExample) -> tuple[list[int], list[tuple[int, int]]]:
        """Tokenize a whole conversation and find each assistant turn's token span.

        Args:
            example: The conversation.

        Returns:
            The token ids and half-open (start, end) spans of the assistant turns, each ending
            with the end-of-turn token where the template writes one.

        Raises:
            ChatTemplateError: A prompt's tokens are not a prefix of prompt+response tokens.
        """
        messages = example.messages
        # Decided once per example, so every prefix below is tokenized the same way.
        literal = self.holds_special_text(messages)
        full = self._encode(messages, add_generation_prompt=False, literal_content=literal)
        self._check_bos(full, example.id)
        spans: list[tuple[int, int]] = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._encode(messages[:index], True, literal_content=literal)
            upto = self._encode(messages[: index + 1], False, literal_content=literal)
            if upto[: len(prompt)] != prompt or full[: len(upto)] != upto:
                raise ChatTemplateError(
                    f"{example.id}: turn {index}: the prompt's tokens are not a prefix of the "
                    "prompt+response tokens; this chat template cannot give exact assistant labels"
                )
            start, end = len(prompt), len(upto)
            # Stop at the end-of-turn token: what the template writes after it (a newline) is
            # formatting, not something the model should learn to say.
            if self.eos_id is not None and self.eos_id in upto[start:end]:
                end = end - upto[start:end][::-1].index(self.eos_id)
            if end <= start:
                raise ChatTemplateError(f"{example.id}: turn {index} renders to no tokens")
            spans.append((start, end))
        last_start, last_end = spans[-1]
        if self.eos_id is not None and self.eos_id not in full[last_start:last_end]:
            # The template does not close the final turn with EOS: add it so the model stops.
            full = [*full[:last_end], self.eos_id, *full[last_end:]]
            spans[-1] = (last_start, last_end + 1)
        return full, spans

    def tokenize(self, example: ChatExample) -> TokenizedExample:
        """Tokenize one example with its assistant mask (untruncated)."""
        ids, spans = self.assistant_spans(example)
        mask = [False] * len(ids)
        for start, end in spans:
            mask[start:end] = [True] * (end - start)
        return TokenizedExample(example.id, example.task_type, tuple(ids), tuple(mask))


def tokenize_split(
    chat: ChatTokenizer,
    examples: Sequence[ChatExample],
    *,
    max_length: int,
    max_truncated_fraction: float = 1.0,
) -> TokenizedSplit:
    """Tokenize a split, truncate to max_length, and exclude examples left with nothing to learn.

    Args:
        chat: The chat tokenizer.
        examples: The split's examples.
        max_length: Longest allowed sequence, in tokens.
        max_truncated_fraction: Abort above this fraction of excluded examples.

    Returns:
        The kept examples and the truncation counts.

    Raises:
        TruncationError: Too many examples lost all supervision.
        ChatTemplateError: The template cannot label an example exactly.
    """
    result = TokenizedSplit(examples=[], n_input=len(examples))
    for example in examples:
        tokenized = chat.tokenize(example)
        if len(tokenized.input_ids) > max_length:
            result.truncated_ids.append(example.id)
            tokenized = TokenizedExample(
                tokenized.example_id,
                tokenized.task_type,
                tokenized.input_ids[:max_length],
                tokenized.assistant_mask[:max_length],
            )
        if tokenized.n_supervised == 0:
            result.dropped_ids.append(example.id)
            continue
        result.examples.append(tokenized)
    if examples and len(result.dropped_ids) / len(examples) > max_truncated_fraction:
        raise TruncationError(
            f"{len(result.dropped_ids)} of {len(examples)} examples lose all supervision at "
            f"max_length={max_length} (threshold {max_truncated_fraction:.1%}); raise --max-length"
        )
    return result


def token_ids_hash(examples: Sequence[TokenizedExample]) -> str:
    """Hash the ids and assistant masks of a split (the manifest's proof of what was trained on)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.example_id.encode() + b"\0")
        digest.update(",".join(map(str, example.input_ids)).encode() + b"\0")
        digest.update(bytes(example.assistant_mask) + b"\n")
    return digest.hexdigest()
