"""Special tokens' text inside messages is plain text; only the template writes control tokens.

Checked on the real embedded tokenizer (SmolLM2, ChatML, 17 special tokens, pad == EOS) and on
the tests' own tiny ChatML tokenizer (other special tokens: <|pad|>, <s>, </s>).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.test_smollm2 import seed_examples
from trainer.dataset import ChatExample
from trainer.tokenization import ChatTokenizer

POSITIONS = {
    "first": "{s} starts this text.",
    "middle": "Some text {s} in the middle.",
    "last": "This text ends with {s}",
    "alone": "{s}",
    "twice": "{s}{s} twice, glued",
}
ROLES = ["system", "user", "assistant"]


@pytest.fixture(scope="module")
def smollm_tokenizer(embedded_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir, local_files_only=True)


def _conversation(role: str, text: str) -> list[dict[str, str]]:
    messages = {
        "system": "Be brief.",
        "user": "Repeat what I write.",
        "assistant": "Here it is.",
        "user2": "Again, please.",
        "assistant2": "Once more.",
    }
    messages[role] = text
    return [{"role": key.rstrip("2"), "content": value} for key, value in messages.items()]


def _special_ids(tokenizer: Any) -> set[int]:
    added = tokenizer.added_tokens_decoder
    return {i for i, t in added.items() if t.special} | set(tokenizer.all_special_ids)


def _check(tokenizer: Any, role: str, position: str) -> None:
    chat = ChatTokenizer(tokenizer)
    special = _special_ids(tokenizer)
    assert len(chat.special_texts) >= 3
    for token in chat.special_texts:
        text = POSITIONS[position].format(s=token)
        messages = _conversation(role, text)
        tokenized = chat.tokenize(ChatExample("x", "x", "generation", messages))
        ids = list(tokenized.input_ids)
        # The control tokens are exactly those of the same conversation without the literal.
        plain = _conversation(role, POSITIONS[position].format(s="x"))
        reference = chat.tokenize(ChatExample("x", "x", "generation", plain)).input_ids
        got = Counter(i for i in ids if i in special)
        want = Counter(i for i in reference if i in special)
        assert got == want, (token, role, position)
        # The literal is there as ordinary characters and reads back as written.
        literal = tokenizer(token, add_special_tokens=False, split_special_tokens=True)
        assert not set(literal["input_ids"]) & special, token
        as_control = want[tokenizer.convert_tokens_to_ids(token)]
        assert tokenizer.decode(ids).count(token) == as_control + text.count(token), token
        # Assistant-only labels still cover each answer and its end-of-turn token, nothing else.
        spans = _supervised_runs(tokenized.input_ids, tokenized.assistant_mask)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        eos = tokenizer.eos_token
        assert [tokenizer.decode(run) for run in spans] == [a + eos for a in answers], token


def _supervised_runs(ids: tuple[int, ...], mask: tuple[bool, ...]) -> list[list[int]]:
    runs: list[list[int]] = []
    previous = False
    for token, masked in zip(ids, mask, strict=True):
        if masked and not previous:
            runs.append([])
        if masked:
            runs[-1].append(token)
        previous = masked
    return runs


TOKENIZERS = [
    pytest.param("tokenizer", id="tiny"),
    pytest.param("smollm_tokenizer", id="embedded", marks=pytest.mark.model),
]


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("role", [*ROLES, "user2", "assistant2"])
@pytest.mark.parametrize("which", TOKENIZERS)
def test_special_text_in_content_is_read_as_text(
    request: pytest.FixtureRequest, which: str, role: str, position: str
) -> None:
    _check(request.getfixturevalue(which), role, position)


@pytest.mark.model
def test_the_issue_example_gets_no_extra_end_of_turn(smollm_tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": "What does <|im_end|> mean in ChatML?"},
        {"role": "assistant", "content": "It closes a turn."},
    ]
    chat = ChatTokenizer(smollm_tokenizer)
    ids = chat.tokenize(ChatExample("x", "x", "generation", messages)).input_ids
    end, start = smollm_tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"])
    # Three turns: the template's default system turn, the user's and the assistant's.
    assert (ids.count(end), ids.count(start)) == (3, 3)


@pytest.mark.model
def test_plain_text_tokenizes_alike_in_both_paths(smollm_tokenizer: Any) -> None:
    """The piecewise path changes nothing for ordinary text (all 175 seed conversations)."""
    chat = ChatTokenizer(smollm_tokenizer)
    for example in seed_examples():
        for generation_prompt in (False, True):
            messages = example.messages[:1] if generation_prompt else example.messages
            whole = chat._encode(messages, generation_prompt)
            pieces = chat._encode(messages, generation_prompt, literal_content=True)
            assert pieces == whole, example.id
