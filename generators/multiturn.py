"""Multi-turn demonstrations: conversations of 2-4 user turns grown from a task.

A conversation starts from a pool task (its instruction and input as the first user turn, its
first instance's output as the first answer). Each round the model writes the user's next
message, of one follow-up kind (a clarification, a constraint, a correction of the assistant:
one versioned, hashed template each, ``generators/templates/multiturn_<kind>.vN.txt``), then the
assistant's answer (``multiturn_answer``); the caller's ``check`` (the turn rules of
:mod:`filters.turns`) decides whether the new turn pair is kept. A failed turn ends the
conversation there; the caller keeps it when it already has two user turns.

Every call is a :class:`~generators.types.GenerationRecord` (stages ``follow_up`` and ``answer``)
made through :class:`generators.bootstrap.Iteration`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass as validated_dataclass

from generators.bootstrap import Iteration
from generators.prompts import load_template
from generators.types import PoolTask, SamplingParams

FollowUp = Literal["clarification", "constraint", "correction"]
FOLLOW_UPS: tuple[FollowUp, ...] = ("clarification", "constraint", "correction")
_SPEAKER = re.compile(r"^\s*(?:user|assistant)\s*:\s*", re.I)


def _user_sampling() -> SamplingParams:
    return SamplingParams(
        temperature=0.8, top_p=0.95, max_tokens=64, stop=("\nAssistant:", "\nUser:", "\n\n")
    )


def _answer_sampling() -> SamplingParams:
    return SamplingParams(temperature=0.0, top_p=1.0, max_tokens=256, stop=("\nUser:",))


@validated_dataclass(config=ConfigDict(extra="forbid"))
class MultiturnConfig:
    """How conversations are grown (one run setting each).

    Attributes:
        min_user_turns / max_user_turns: each conversation aims at a number of user turns
            drawn uniformly from this range (2-4 by default, the issue's).
        follow_ups: the follow-up kinds drawn from, uniformly.
        system_prompt: a system message put first in every conversation, when set.
        user_sampling: decoding of the user turns.
        answer_sampling: decoding of the assistant turns.
        template_version: version of every ``multiturn_*`` template.
    """

    min_user_turns: Annotated[int, Field(ge=2, le=8)] = 2
    max_user_turns: Annotated[int, Field(ge=2, le=8)] = 4
    follow_ups: Annotated[tuple[FollowUp, ...], Field(min_length=1)] = FOLLOW_UPS
    system_prompt: Annotated[str | None, Field(max_length=4000)] = None
    user_sampling: SamplingParams = field(default_factory=_user_sampling)
    answer_sampling: SamplingParams = field(default_factory=_answer_sampling)
    template_version: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _ordered(self) -> MultiturnConfig:
        if self.min_user_turns > self.max_user_turns:
            raise ValueError("min_user_turns must not exceed max_user_turns")
        return self


@dataclass
class Conversation:
    """A conversation being grown: its messages (system first when set) and provenance."""

    task_id: str
    messages: list[dict[str, str]]
    target_user_turns: int
    generation_ids: list[str] = field(default_factory=list)  # follow_up, answer, ... in order
    follow_ups: list[str] = field(default_factory=list)
    stopped_by: str | None = None  # the turn rule that ended it early, with its reason

    @property
    def user_turns(self) -> int:
        """How many user messages it holds."""
        return sum(m["role"] == "user" for m in self.messages)

    def last(self, role: str) -> str:
        """The content of the last message of ``role`` ("" when none)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == role), "")


def transcript(messages: Sequence[dict[str, str]]) -> str:
    """The conversation as the templates show it: ``Role: content`` blocks."""
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def clean_turn(text: str) -> str:
    """A completion as one turn: a repeated speaker label dropped, the first paragraph kept."""
    return _SPEAKER.sub("", text.strip()).split("\n\n", 1)[0].strip()


def start_conversations(
    tasks: Sequence[PoolTask], *, rng: random.Random, config: MultiturnConfig
) -> list[Conversation]:
    """One conversation per task that has an instance to answer its first turn with."""
    out = []
    for task in tasks:
        if not task.instances:
            continue
        first = task.instances[0]
        user = task.instruction.strip()
        if first.input.strip():
            user = f"{user}\n\n{first.input.strip()}"
        system = config.system_prompt
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user},
            {"role": "assistant", "content": first.output.strip()},
        ]
        target = rng.randint(config.min_user_turns, config.max_user_turns)
        out.append(Conversation(task.id, messages, target))
    return out


Check = Callable[[Conversation, str, str], str | None]


def grow(
    run: Iteration,
    conversations: list[Conversation],
    *,
    rng: random.Random,
    config: MultiturnConfig,
    check: Check,
) -> None:
    """Grow each conversation to its target number of user turns, one round per turn.

    Args:
        run: the iteration whose ``call`` records every generation.
        conversations: grown in place.
        rng: draws the follow-up kinds.
        config: templates and decoding.
        check: ``(conversation, user, answer) -> None`` to keep the new turn pair, or the
            rule and reason that end the conversation (``"turn_echo: ..."``).

    Raises:
        TemplateError: a template version does not exist.
        BackendError: the backend failed as a whole.
    """
    answer_template = load_template("multiturn_answer", config.template_version)
    while True:
        active = [
            c for c in conversations if c.stopped_by is None and c.user_turns < c.target_user_turns
        ]
        if not active:
            return
        kinds = [rng.choice(config.follow_ups) for _ in active]
        templates = [load_template(f"multiturn_{k}", config.template_version) for k in kinds]
        prompts = [
            t.render(conversation=transcript(c.messages))
            for t, c in zip(templates, active, strict=True)
        ]
        ids = [[c.task_id] for c in active]
        user_records = run.call("follow_up", templates, prompts, ids, config.user_sampling)
        users = [clean_turn(r.completion) for r in user_records]
        answer_prompts = [
            answer_template.render(
                conversation=transcript([*c.messages, {"role": "user", "content": u}])
            )
            for c, u in zip(active, users, strict=True)
        ]
        answer_records = run.call(
            "answer",
            [answer_template] * len(active),
            answer_prompts,
            ids,
            config.answer_sampling,
        )
        for conv, kind, user, u_rec, a_rec in zip(
            active, kinds, users, user_records, answer_records, strict=True
        ):
            answer = clean_turn(a_rec.completion)
            conv.generation_ids += [u_rec.id, a_rec.id]  # a failed turn's calls count too
            if a_rec.finish_reason == "length":
                conv.stopped_by = "turn_length: the answer was cut by the token limit"
                continue
            failed = check(conv, user, answer)
            if failed is not None:
                conv.stopped_by = failed
                continue
            conv.messages += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": answer},
            ]
            conv.follow_ups.append(kind)
