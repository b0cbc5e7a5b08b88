"""Preference records as TRL's ``DPOTrainer`` reads them: standard or conversational.

TRL's preference dataset formats (https://huggingface.co/docs/trl/dataset_formats,
"Preference"): the *standard* form holds ``prompt``, ``chosen`` and ``rejected`` strings; the
*conversational* form holds message lists: ``prompt`` the system and user messages, ``chosen``
and ``rejected`` one assistant message each. Extra keys are carried along untouched.
"""

from __future__ import annotations

from typing import Any


def preference_record(
    prompt: str,
    chosen: str,
    rejected: str,
    *,
    conversational: bool = False,
    system: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One preference row.

    Args:
        prompt: The user's prompt (instruction and input joined by the caller).
        chosen: The preferred response.
        rejected: The other response.
        conversational: Message lists instead of strings.
        system: A system message placed before the prompt (conversational form only).
        **extra: Further columns (ids, margin, flags), copied as they are.

    Returns:
        ``{"prompt", "chosen", "rejected", **extra}``.

    Raises:
        ValueError: a system message for the standard form, which has no place for it.
    """
    if not conversational:
        if system is not None:
            raise ValueError("a system message needs the conversational form")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **extra}
    messages = [{"role": "system", "content": system}] if system is not None else []
    return {
        "prompt": [*messages, {"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        **extra,
    }
