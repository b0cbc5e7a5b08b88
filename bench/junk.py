"""Junk made from real answers, one transformation per kind the quality scorer must rank low.

Each kind is what a small model's instance completions were seen to do (issue 15's demo
export, bench/data/quality_model_labelled.jsonl): repeat the instruction, leak list numbers of
the next task, stop mid-sentence, loop, or say nothing. Every transformation has several
variants picked by a seeded ``random.Random`` so the scorer is not fitted to one string shape.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Example = tuple[str, str, str]  # (instruction, input, output)
# Truncation needs something to cut: outputs of fewer words are not truncated.
MIN_WORDS_TO_TRUNCATE = 8


def echo(ex: Example, others: list[str], rng: random.Random) -> str:
    """The output repeats the instruction (or instruction and input), possibly relabelled."""
    instruction, inp, _ = ex
    variants = [
        instruction,
        f"Output: {instruction}",
        instruction.lower(),
        f"{instruction}\n{inp}".strip(),
        f"{instruction} {instruction}",
        instruction.rstrip(".?!") + ".",
    ]
    return rng.choice(variants)


def list_number(ex: Example, others: list[str], rng: random.Random) -> str:
    """The answer runs on into the next task of the prompt's numbered list."""
    _, _, output = ex
    n = rng.randint(2, 19)
    nxt = rng.choice(others)
    variants = [
        f"{output}\n\n{n}. {nxt}",
        f"{output}\n{n}.",
        f"{output}\nTask {n}: {nxt}",
        f"{n}. {nxt}",
        f"{output}\n\nInstruction: {nxt}",
    ]
    return rng.choice(variants)


def truncated(ex: Example, others: list[str], rng: random.Random) -> str | None:
    """The output stops mid-sentence: after a word or inside one (None: too short).

    A cut that lands just after a sentence's full stop leaves a shorter answer that reads
    complete; no text signal can tell it and it is not obvious junk, so the cut moves on to
    the next word boundary that is inside a sentence.
    """
    words = ex[2].split(" ")
    if len(ex[2].split()) < MIN_WORDS_TO_TRUNCATE:
        return None
    cut = rng.randint(max(2, len(words) * 3 // 10), max(3, len(words) * 8 // 10))
    while cut < len(words) - 1 and words[cut - 1].rstrip()[-1:] in (".", "!", "?"):
        cut += 1
    text = " ".join(words[:cut]).rstrip()
    if rng.random() < 0.3 and len(words[cut]) > 3:  # mid-word
        text += " " + words[cut][: len(words[cut]) // 2]
    return text


def degenerate(ex: Example, others: list[str], rng: random.Random) -> str:
    """The output loops: a phrase, a sentence or a word repeated until the length limit."""
    words = ex[2].split() or ["the"]
    start = rng.randrange(len(words))
    phrase = " ".join(words[start : start + rng.randint(1, 6)])
    sentence = ex[2].strip().splitlines()[-1] if ex[2].strip() else phrase
    variants = [
        " ".join([phrase] * rng.randint(8, 40)),
        ex[2] + "\n" + "\n".join([sentence] * rng.randint(4, 12)),
        " ".join([rng.choice(words)] * rng.randint(10, 60)),
    ]
    return rng.choice(variants)


def empty(ex: Example, others: list[str], rng: random.Random) -> str:
    """Nothing said: empty, blank, punctuation or a bare field label."""
    return rng.choice(["", " ", "\n\n", ".", "...", "Output:", "Answer:", "-", '""'])


KINDS: dict[str, Callable[[Example, list[str], random.Random], str | None]] = {
    "echo": echo,
    "list_number": list_number,
    "truncated": truncated,
    "degenerate": degenerate,
    "empty": empty,
}


def make_junk(examples: list[Example], kind: str, seed: int = 0) -> list[Example]:
    """One junk example of ``kind`` per real one (fewer for ``truncated``), same prompts."""
    rng = random.Random(f"{seed}:{kind}")
    instructions = [e[0] for e in examples]
    out = []
    for ex in examples:
        text = KINDS[kind](ex, [i for i in instructions if i != ex[0]], rng)
        if text is not None:
            out.append((ex[0], ex[1], text))
    return out
