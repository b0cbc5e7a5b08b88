"""A selected task as export rows: the chat (messages) and Alpaca shapes, and its split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from service.storage.candidates import InstanceRow, TaskRow

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)


@dataclass(slots=True)
class Example:
    """One exported example; `messages` and the Alpaca fields describe the same conversation."""

    id: str
    task_id: str
    task_type: str
    instance_id: int | None
    messages: list[dict[str, str]]
    instruction: str
    input: str
    output: str

    def messages_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "messages": self.messages,
        }

    def alpaca_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "instruction": self.instruction,
            "input": self.input,
            "output": self.output,
        }


def user_content(instruction: str, input_text: str) -> str:
    """The user turn: the instruction, then a blank line and the input when there is one."""
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def split_of(instruction: str, *, seed: int, validation_ratio: float) -> str:
    """Assign a task to a split by a stable hash of its instruction text.

    The hash depends on nothing but the text and the seed, so adding tasks never moves an old
    one across the split, and the same instruction from two runs lands in the same split (no
    train/validation leak through duplicates).
    """
    digest = hashlib.sha256(f"{seed}\x00{instruction}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2.0**64
    return VALIDATION if unit < validation_ratio else TRAIN


def examples_of(task: TaskRow, instances: list[InstanceRow]) -> list[Example]:
    """The examples a task contributes: one per kept instance, or one conversation if it has turns.

    Args:
        task: The selected task.
        instances: Its kept instances, in idx order (at least one).

    Returns:
        The examples, ids `"<task id>:<instance idx>"`.
    """
    task_id = str(task.id)
    if task.turns:
        return [_conversation(task, instances[0])]
    return [
        Example(
            id=f"{task_id}:{inst.idx}",
            task_id=task_id,
            task_type=task.task_type,
            instance_id=inst.id,
            messages=[
                {"role": "user", "content": user_content(task.instruction, inst.input)},
                {"role": "assistant", "content": inst.output},
            ],
            instruction=task.instruction,
            input=inst.input,
            output=inst.output,
        )
        for inst in instances
    ]


def _conversation(task: TaskRow, first: InstanceRow) -> Example:
    """A multi-turn task as one example; Alpaca gets the last exchange with the history as input."""
    turns = task.turns or []
    messages = [{"role": str(t["role"]), "content": str(t["content"])} for t in turns]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    history = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages[:last_user])
    return Example(
        id=f"{task.id}:{first.idx}",
        task_id=str(task.id),
        task_type=task.task_type,
        instance_id=first.id,
        messages=messages,
        instruction=messages[last_user]["content"],
        input=history,
        output=messages[-1]["content"],
    )
